//! The stable sort behind `builtins.sort`, driven by a fallible "less than".
//!
//! Nix's comparator is a Nix function: each comparison is a call into the evaluator, may
//! fail (the first error aborts the sort), and need not be a consistent order. So the
//! standard library's sorts are out (they take an infallible comparator, and may panic on
//! an inconsistent one), and what matters is the number of comparisons, not the moves:
//! a comparison is a function call, a move is copying a word. Hence:
//! - elements only ever move, by swaps: a merge swaps each element into the other buffer
//!   (whose stale contents it swaps out), so values are never cloned and dropped to be
//!   moved, and are compared where they lie (a sort of indices into them reads them in
//!   random order, a cache miss per comparison on a large list);
//! - natural runs are found first (ascending, or strictly descending and reversed), so a
//!   sorted or reversed list costs `n - 1` comparisons;
//! - runs shorter than [`MIN_RUN`] are extended by binary insertion, which needs about
//!   `log2 k` comparisons for the `k`-th element instead of up to `k`;
//! - adjacent runs are merged pairwise, level by level; two runs already in order cost
//!   one comparison.
//!
//! Whatever the comparator answers, the result is a permutation of the input (everything
//! is a swap, a rotation or a reversal), and every index used is within bounds by
//! construction, never by the comparator's consistency.

/// Runs are extended to this length by binary insertion before merging.
const MIN_RUN: usize = 32;

/// Sorts `v` stably: `less(ctx, x, y)` says whether `x` comes strictly before `y`. Elements
/// the comparator finds equal keep their order. The first error is returned as is, with
/// `v` left in some order of its elements. `filler` fills the merge buffer before the
/// elements are swapped through it (a value that is free to copy and drop).
pub(super) fn stable_sort<T: Clone, C, E>(
    ctx: &mut C,
    v: &mut [T],
    filler: T,
    less: &mut impl FnMut(&mut C, &T, &T) -> Result<bool, E>,
) -> Result<(), E> {
    let n = v.len();
    if n < 2 {
        return Ok(());
    }
    // Run boundaries: run `k` is `v[bounds[k]..bounds[k + 1]]`.
    let mut bounds = vec![0];
    let mut start = 0;
    while start < n {
        let mut end = natural_run(ctx, v, start, less)?;
        let target = n.min(start + MIN_RUN);
        while end < target {
            insert(ctx, v, start, end, less)?;
            end += 1;
        }
        bounds.push(end);
        start = end;
    }
    if bounds.len() == 2 {
        return Ok(());
    }
    let mut buf = vec![filler; n];
    let mut in_buf = false;
    while bounds.len() > 2 {
        let (src, dst): (&mut [T], &mut [T]) = if in_buf {
            (&mut buf[..], &mut *v)
        } else {
            (&mut *v, &mut buf[..])
        };
        let mut merged = Vec::with_capacity(bounds.len() / 2 + 2);
        merged.push(0);
        let mut k = 0;
        while k + 1 < bounds.len() {
            let lo = bounds[k];
            if k + 2 < bounds.len() {
                let (mid, hi) = (bounds[k + 1], bounds[k + 2]);
                let (a, b) = src[lo..hi].split_at_mut(mid - lo);
                merge(ctx, a, b, &mut dst[lo..hi], less)?;
                merged.push(hi);
                k += 2;
            } else {
                // An odd run out: carried over to the next level as it is.
                let hi = bounds[k + 1];
                dst[lo..hi].swap_with_slice(&mut src[lo..hi]);
                merged.push(hi);
                k += 1;
            }
        }
        bounds = merged;
        in_buf = !in_buf;
    }
    if in_buf {
        v.swap_with_slice(&mut buf);
    }
    Ok(())
}

/// The end of the natural run starting at `start`: ascending (each element not less than
/// the one before), or strictly descending, which is reversed in place (strictly, so that
/// reversing cannot reorder equal elements).
fn natural_run<T, C, E>(
    ctx: &mut C,
    v: &mut [T],
    start: usize,
    less: &mut impl FnMut(&mut C, &T, &T) -> Result<bool, E>,
) -> Result<usize, E> {
    let n = v.len();
    let mut end = start + 1;
    if end == n {
        return Ok(end);
    }
    if less(ctx, &v[end], &v[end - 1])? {
        end += 1;
        while end < n && less(ctx, &v[end], &v[end - 1])? {
            end += 1;
        }
        v[start..end].reverse();
    } else {
        end += 1;
        while end < n && !less(ctx, &v[end], &v[end - 1])? {
            end += 1;
        }
    }
    Ok(end)
}

/// Inserts `v[end]` into the sorted `v[start..end]`, after every element it is not less
/// than (stability), found by binary search.
fn insert<T, C, E>(
    ctx: &mut C,
    v: &mut [T],
    start: usize,
    end: usize,
    less: &mut impl FnMut(&mut C, &T, &T) -> Result<bool, E>,
) -> Result<(), E> {
    let (mut lo, mut hi) = (start, end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if less(ctx, &v[end], &v[mid])? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    v[lo..=end].rotate_right(1);
    Ok(())
}

/// Merges the sorted `a` and `b` (`a` first in the input) into `out`, by swapping: `a`
/// and `b` are left holding what `out` held.
fn merge<T, C, E>(
    ctx: &mut C,
    a: &mut [T],
    b: &mut [T],
    out: &mut [T],
    less: &mut impl FnMut(&mut C, &T, &T) -> Result<bool, E>,
) -> Result<(), E> {
    let (n_a, n_b) = (a.len(), b.len());
    let (out_a, out_b) = out.split_at_mut(n_a);
    // Already in order (e.g. sorted input split by `MIN_RUN`): one comparison, no merging.
    if !less(ctx, &b[0], &a[n_a - 1])? {
        out_a.swap_with_slice(a);
        out_b.swap_with_slice(b);
        return Ok(());
    }
    let (mut i, mut j, mut k) = (0, 0, 0);
    while i < n_a && j < n_b {
        // Take from `b` only when it is strictly smaller: stability.
        if less(ctx, &b[j], &a[i])? {
            std::mem::swap(&mut out[k], &mut b[j]);
            j += 1;
        } else {
            std::mem::swap(&mut out[k], &mut a[i]);
            i += 1;
        }
        k += 1;
    }
    out[k..k + (n_a - i)].swap_with_slice(&mut a[i..]);
    k += n_a - i;
    out[k..].swap_with_slice(&mut b[j..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::stable_sort;

    /// A small deterministic generator (xorshift), so the cases are the same every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Sorts `keys` by index and counts the comparisons.
    fn sort_keys(keys: &[u64]) -> (Vec<usize>, usize) {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        let mut n_compares = 0usize;
        stable_sort(
            &mut n_compares,
            &mut order,
            0,
            &mut |n: &mut usize, x, y| {
                *n += 1;
                Ok::<bool, ()>(keys[*x] < keys[*y])
            },
        )
        .unwrap();
        (order, n_compares)
    }

    /// The reference: the standard library's stable sort of the indices by key.
    fn expected(keys: &[u64]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by_key(|&i| keys[i]);
        order
    }

    #[test]
    fn sorts_stably_like_the_standard_sort() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for n in (0..70).chain([100, 257, 1000, 4099]) {
            for distinct in [1, 2, 7, 1 << 40] {
                let keys: Vec<u64> = (0..n).map(|_| rng.next() % distinct).collect();
                assert_eq!(
                    sort_keys(&keys).0,
                    expected(&keys),
                    "n={n} distinct={distinct}"
                );
            }
        }
    }

    #[test]
    fn values_that_own_memory_are_moved_not_copied() {
        // Strings (each owning a buffer) come out sorted and stable, each exactly once.
        let mut rng = Rng(3);
        let mut v: Vec<(String, usize)> = (0..300)
            .map(|i| (format!("k{}", rng.next() % 50), i))
            .collect();
        let mut want = v.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        stable_sort(
            &mut (),
            &mut v,
            (String::new(), 0),
            &mut |_: &mut (), x, y| Ok::<bool, ()>(x.0 < y.0),
        )
        .unwrap();
        assert_eq!(v, want);
    }

    #[test]
    fn sorted_and_reversed_input_cost_one_pass() {
        let sorted: Vec<u64> = (0..1000).collect();
        assert_eq!(sort_keys(&sorted), (expected(&sorted), 999));
        let reversed: Vec<u64> = (0..1000).rev().collect();
        assert_eq!(sort_keys(&reversed), (expected(&reversed), 999));
        // Equal elements are not a descending run: their order stays.
        let equal = vec![5u64; 100];
        assert_eq!(sort_keys(&equal), ((0..100).collect(), 99));
    }

    #[test]
    fn random_input_needs_few_comparisons() {
        // About n log2 n - n: a merge sort of runs made by insertion one at a time needs
        // about 6 % more on such input, the bound is log2(n!) (about 15.3 per element here).
        let mut rng = Rng(7);
        let keys: Vec<u64> = (0..100_000).map(|_| rng.next()).collect();
        let (order, n_compares) = sort_keys(&keys);
        assert_eq!(order, expected(&keys));
        assert!(n_compares < 100_000 * 157 / 10, "{n_compares} comparisons");
    }

    #[test]
    fn an_inconsistent_comparator_still_gives_a_permutation() {
        let mut rng = Rng(42);
        for n in [2, 3, 31, 32, 33, 100, 1000] {
            let mut order: Vec<usize> = (0..n).collect();
            stable_sort(&mut rng, &mut order, 0, &mut |r: &mut Rng, _, _| {
                Ok::<bool, ()>(r.next() & 1 == 0)
            })
            .unwrap();
            let mut seen = order.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_first_error_stops_the_sort() {
        let mut order: Vec<usize> = (0..100).rev().collect();
        let mut n_compares = 0;
        let r = stable_sort(
            &mut n_compares,
            &mut order,
            0,
            &mut |n: &mut usize, x, y| {
                *n += 1;
                if *n == 10 {
                    return Err(format!("stop at {x} {y}"));
                }
                Ok(x < y)
            },
        );
        assert!(r.is_err_and(|e| e.starts_with("stop at")));
        assert_eq!(n_compares, 10);
    }
}
