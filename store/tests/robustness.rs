//! Malformed input must produce errors, never panics: mutated and truncated NARs, ATerms,
//! store paths and hashes.

use tvix_store::derivation::Derivation;
use tvix_store::hash::NixHash;
use tvix_store::nar::{self, NarEncoder};
use tvix_store::nixbase32;
use tvix_store::store_path::StorePath;

/// A small deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            break;
        }
        let i = rng.below(v.len());
        match rng.below(4) {
            0 => v[i] = rng.next() as u8,
            1 => v[i] ^= 1 << rng.below(8),
            2 => v.truncate(i),
            _ => {
                let b = v[i];
                v.insert(i, b);
            }
        }
    }
    v
}

fn sample_nar() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("t");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(root.join("a/f"), b"hello world").unwrap();
    std::fs::write(root.join("x"), b"").unwrap();
    std::os::unix::fs::symlink("a/f", root.join("l")).unwrap();
    nar::dump_path(&root, Vec::new()).unwrap()
}

#[test]
fn mutated_nars_do_not_panic() {
    let good = sample_nar();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut rejected = 0;
    for _ in 0..20_000 {
        let bad = mutate(&mut rng, &good);
        let mut enc = NarEncoder::new(Vec::new());
        match nar::parse(bad.as_slice(), &mut enc) {
            Ok(()) => {
                // Whatever was accepted re-encodes to a prefix of the input.
                let out = enc.into_inner();
                assert!(bad.starts_with(&out));
            }
            Err(_) => rejected += 1,
        }
    }
    assert!(rejected > 10_000);
}

const ATERM: &str = r#"Derive([("dev","/nix/store/5fyil6fi57b0li0r7mnfm23r96dik4yb-multi-dev","",""),("out","/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x","","")],[("/nix/store/3bi8bxlakfvxm1g1y940j7mcjkchkaxk-plain.drv",["out"])],["/nix/store/vsixhbqqmza4jpbllw11dnl5p5sc7181-srcfile"],"x86_64-linux","/bin/sh",["-c","a\"b\\c\n"],[("builder","/bin/sh"),("name","x"),("out","/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x"),("system","x86_64-linux")])"#;

#[test]
fn mutated_aterms_do_not_panic() {
    let good = ATERM.as_bytes();
    let drv = Derivation::from_aterm_bytes(good).unwrap();
    assert_eq!(drv.to_aterm_bytes(), good);
    let mut rng = Rng(0x0fed_cba9_8765_4321);
    for _ in 0..20_000 {
        let bad = mutate(&mut rng, good);
        if let Ok(d) = Derivation::from_aterm_bytes(&bad) {
            // Accepted input re-parses to the same value after serialisation.
            let again = Derivation::from_aterm_bytes(&d.to_aterm_bytes()).unwrap();
            assert_eq!(again, d);
            let sd = tvix_store::StoreDir::default();
            let _ = d.drv_path(&sd, "x");
            let _ = d.hash_derivation_modulo(|_| None);
        }
    }
}

#[test]
fn mutated_paths_and_hashes_do_not_panic() {
    let mut rng = Rng(42);
    let path = b"/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x";
    let hashes = [
        "sha256:1r3v22qkypccqifzbww5lrn6hf1chi23m6zzkyvb8bvg457nxslq",
        "sha256-mOpuTyFvL7S2n/+bOkSELDhobKaF8/VdxIxdP7EQe+Q=",
        "sha1:fd540npwk7x370s4s2jzpx74wf365jjm",
    ];
    for _ in 0..20_000 {
        let p = mutate(&mut rng, path);
        if let Ok(s) = std::str::from_utf8(&p) {
            let _ = StorePath::from_absolute_path(s);
        }
        let _ = nixbase32::decode(p.get(11..43).unwrap_or(&p));
        let which = rng.below(hashes.len());
        let h = mutate(&mut rng, hashes[which].as_bytes());
        if let Ok(s) = std::str::from_utf8(&h) {
            let _ = NixHash::parse(s, None);
        }
    }
}
