//! JSON: `builtins.toJSON`, `builtins.fromJSON` and [`Evaluator::to_json`] for `--json`.
//!
//! Output follows CppNix, which serialises with nlohmann::json: attribute names in sorted
//! order, no whitespace, floats in shortest round-trip form (`1.0`, `1e+20`), and non-UTF-8
//! strings rejected. Sets with `__toString` or `outPath` become what those give, paths are
//! copied to the store, and the string context of everything written is kept.

use std::rc::Rc;

use super::control::primop;
use super::fail;
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::eval::{sym, CoerceMode, Evaluator};
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("toJSON", 1, |ev, a, s| {
        let out = ev.to_json_string(a[0].clone(), s)?;
        Ok(Value::String(Rc::new(out)))
    }),
    primop!("fromJSON", 1, |ev, a, s| {
        let text = ev.force_string(a[0].clone(), s).context(s, || {
            "while evaluating the first argument passed to builtins.fromJSON".to_string()
        })?;
        match parse_json(text.as_bytes()) {
            Ok(v) => Ok(v),
            Err(m) => fail(m, s),
        }
    }),
];

const STACK_RED_ZONE: usize = 256 * 1024;
const STACK_SEGMENT: usize = 8 * 1024 * 1024;

impl Evaluator {
    /// Serialises a value as JSON (forcing it deeply), as `nix-instantiate --eval --json`
    /// prints it. The string context of the output is dropped; `builtins.toJSON` keeps it.
    pub fn to_json(&mut self, v: Value, span: Option<Span>) -> EvalResult<String> {
        let s = self.to_json_string(v, span)?;
        Ok(s.to_str_lossy().into_owned())
    }

    /// Serialises a value as JSON, keeping the context of every string written.
    pub fn to_json_string(&mut self, v: Value, span: Option<Span>) -> EvalResult<NixString> {
        let mut w = JsonWriter {
            out: String::new(),
            context: Context::new(),
            span,
        };
        w.value(self, v, 0)?;
        Ok(NixString::with_context(w.out.into_bytes(), w.context))
    }
}

struct JsonWriter {
    out: String,
    context: Context,
    span: Option<Span>,
}

impl JsonWriter {
    /// One level deeper: counted against the call depth like any nesting, so a structure
    /// too deep to serialise is a clean error (as in the reference), never a crash.
    fn value(&mut self, ev: &mut Evaluator, v: Value, depth: usize) -> EvalResult<()> {
        ev.nested(self.span, |ev| self.value_inner(ev, v, depth))
    }

    fn value_inner(&mut self, ev: &mut Evaluator, v: Value, depth: usize) -> EvalResult<()> {
        let span = self.span;
        match ev.force(v)? {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if b.get() { "true" } else { "false" }),
            Value::Int(i) => self.out.push_str(&i.to_string()),
            Value::Float(f) => self.out.push_str(&json_float(f.get())),
            Value::String(s) => self.string(&s)?,
            p @ Value::Path(_) => {
                let s = ev.coerce_to_string(p, CoerceMode::Interpolation, span)?;
                self.string(&s)?;
            }
            Value::List(l) => {
                self.out.push('[');
                for (i, item) in l.iter().enumerate() {
                    ev.check_interrupt(span)?;
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.value(ev, item.clone(), depth + 1).context(span, || {
                        format!("while evaluating list element at index {i}")
                    })?;
                }
                self.out.push(']');
            }
            v @ Value::Attrs(_) => self.attrs(ev, v, depth)?,
            f @ (Value::Lambda(_) | Value::PrimOp(_)) => {
                let what = match &f {
                    Value::PrimOp(app) if app.args.is_empty() => {
                        format!("the built-in function '{}'", app.op.name)
                    }
                    Value::PrimOp(app) => {
                        format!("the partially applied built-in function '{}'", app.op.name)
                    }
                    _ => "a function".to_string(),
                };
                return fail(format!("cannot convert {what} to JSON"), span);
            }
            Value::Thunk(_) => unreachable!("force returns a value in weak head normal form"),
        }
        Ok(())
    }

    fn attrs(&mut self, ev: &mut Evaluator, v: Value, depth: usize) -> EvalResult<()> {
        let span = self.span;
        let Value::Attrs(a) = &v else { unreachable!() };
        if let Some(entry) = a.get_entry(sym::to_string()) {
            let pos = entry.pos.get();
            let f = entry.value.clone();
            let s = (|| {
                let f = ev.force(f)?;
                let r = ev.call(f, v.clone(), span)?;
                let r = ev.force(r)?;
                match &r {
                    Value::String(s) => Ok(s.clone()),
                    Value::Path(_) => ev.coerce_to_string(r, CoerceMode::Interpolation, pos),
                    Value::Attrs(inner)
                        if inner.contains(sym::to_string()) || inner.contains(sym::out_path()) =>
                    {
                        ev.coerce_to_string(r, CoerceMode::Interpolation, pos)
                    }
                    Value::Attrs(_) => fail(
                        format!(
                            "`__toString` must return a string, but got {}",
                            ev.describe(&r)
                        ),
                        pos,
                    ),
                    other => fail(
                        format!(
                            "`__toString` should return a string, but got {}",
                            ev.describe(other)
                        ),
                        pos,
                    ),
                }
            })()
            .context(pos, || {
                "while using the result of the `__toString` attribute".to_string()
            })?;
            return self.string(&s);
        }
        if let Some(entry) = a.get_entry(sym::out_path()) {
            let pos = entry.pos.get();
            return self
                .value(ev, entry.value.clone(), depth + 1)
                .context(pos, || "while using the `outPath` attribute".to_string());
        }
        self.out.push('{');
        for (i, entry) in a.iter().enumerate() {
            ev.check_interrupt(span)?;
            if i > 0 {
                self.out.push(',');
            }
            write_json_string(entry.name.as_bytes(), &mut self.out)
                .map_err(|m| EvalError::new(ErrorKind::Other(m), span))?;
            self.out.push(':');
            let name = entry.name;
            self.value(ev, entry.value.clone(), depth + 1)
                .context(entry.pos.get().or(span), || {
                    format!("while evaluating attribute '{name}'")
                })?;
        }
        self.out.push('}');
        Ok(())
    }

    fn string(&mut self, s: &NixString) -> EvalResult<()> {
        if let Some(c) = s.context() {
            self.context.extend(c.iter().cloned());
        }
        write_json_string(s.as_bytes(), &mut self.out)
            .map_err(|m| EvalError::new(ErrorKind::Other(m), self.span))
    }
}

/// Checks that `bytes` is UTF-8 the way nlohmann::json does when it serialises, with its
/// messages (the index is that of the first byte that cannot continue the sequence).
fn check_utf8(bytes: &[u8]) -> Result<(), String> {
    let invalid = |i: usize| {
        Err(format!(
            "JSON serialization error: [json.exception.type_error.316] invalid UTF-8 byte at index {i}: 0x{:02X}",
            bytes[i]
        ))
    };
    let mut i = 0;
    while i < bytes.len() {
        let (extra, lo, hi) = match bytes[i] {
            0x00..=0x7f => {
                i += 1;
                continue;
            }
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return invalid(i),
        };
        for k in 1..=extra {
            let j = i + k;
            let Some(&b) = bytes.get(j) else {
                return Err(format!(
                    "JSON serialization error: [json.exception.type_error.316] incomplete UTF-8 string; last byte: 0x{:02X}",
                    bytes[bytes.len() - 1]
                ));
            };
            let (l, h) = if k == 1 { (lo, hi) } else { (0x80, 0xbf) };
            if !(l..=h).contains(&b) {
                return invalid(j);
            }
        }
        i += extra + 1;
    }
    Ok(())
}

/// Writes a JSON string literal (UTF-8 kept as is, control characters escaped).
fn write_json_string(bytes: &[u8], out: &mut String) -> Result<(), String> {
    // Valid UTF-8 passes nlohmann's check too; only invalid text needs its message.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            check_utf8(bytes)?;
            return Err(e.to_string());
        }
    };
    write_json_str(text, out);
    Ok(())
}

/// Writes `text` as a JSON string literal as Nix (nlohmann) does: UTF-8 kept as is, quotes,
/// backslashes and control characters escaped.
pub fn write_json_str(text: &str, out: &mut String) {
    out.reserve(text.len() + 2);
    out.push('"');
    // Only ASCII bytes are escaped, so the text between them is copied in runs (split at
    // ASCII bytes, which are character boundaries).
    let mut run_start = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            8 => "\\b",
            12 => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[run_start..i]);
        if escaped.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escaped);
        }
        run_start = i + 1;
    }
    out.push_str(&text[run_start..]);
    out.push('"');
}

/// A float as nlohmann::json writes it: the digits of Grisu2 (shortest or nearly so, always
/// reading back as the same number), in fixed notation when the decimal exponent of the
/// leading digit is in [-4, 14] (with `.0` for whole numbers) and in scientific notation
/// (`1e+20`, `1.5e-07`) otherwise. Non-finite numbers become `null`.
pub fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0.0");
    }
    let (digits, exp10) = grisu::digits(f.abs());
    let k = digits.len() as i32;
    // The value is 0.DIGITS * 10^n.
    let n = k + exp10;
    let body = if k <= n && n <= 15 {
        format!("{digits}{}.0", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 15 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -4 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let m = if k == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        format!(
            "{m}e{}{:02}",
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        )
    };
    format!("{sign}{body}")
}

/// Grisu2 (Loitsch, "Printing Floating-Point Numbers Quickly and Accurately with Integers",
/// 2010), with the parameters nlohmann::json uses: products scaled into binary exponents
/// [-60, -32] by cached powers of ten every 8 decimal exponents from 10^-300 to 10^340. The
/// cached powers are computed once, exactly, with big integers.
mod grisu {
    use std::sync::OnceLock;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Fp {
        f: u64,
        e: i32,
    }

    impl Fp {
        fn normalize(self) -> Fp {
            let s = self.f.leading_zeros();
            Fp {
                f: self.f << s,
                e: self.e - s as i32,
            }
        }

        /// The upper 64 bits of the product, rounded half up.
        fn mul(self, o: Fp) -> Fp {
            let p = self.f as u128 * o.f as u128;
            let f = (p >> 64) as u64 + ((p as u64) >> 63);
            Fp {
                f,
                e: self.e + o.e + 64,
            }
        }
    }

    const ALPHA: i32 = -60;
    const GAMMA: i32 = -32;
    const MIN_DEC_EXP: i32 = -300;
    const MAX_DEC_EXP: i32 = 340;
    const DEC_STEP: i32 = 8;

    /// Little-endian base-2^32 natural numbers, just what the table needs.
    #[derive(Clone)]
    struct Big(Vec<u32>);

    impl Big {
        fn one() -> Big {
            Big(vec![1])
        }
        fn mul_small(&mut self, m: u32) {
            let mut carry = 0u64;
            for limb in &mut self.0 {
                let v = *limb as u64 * m as u64 + carry;
                *limb = v as u32;
                carry = v >> 32;
            }
            if carry > 0 {
                self.0.push(carry as u32);
            }
        }
        fn bits(&self) -> usize {
            let top = self.0.iter().rposition(|&l| l != 0).unwrap_or(0);
            top * 32 + (32 - self.0[top].leading_zeros() as usize)
        }
        fn bit(&self, i: usize) -> bool {
            self.0.get(i / 32).is_some_and(|l| (l >> (i % 32)) & 1 == 1)
        }
        fn shl1_or(&mut self, bit: bool) {
            let mut carry = bit as u32;
            for limb in &mut self.0 {
                let next = *limb >> 31;
                *limb = (*limb << 1) | carry;
                carry = next;
            }
            if carry > 0 {
                self.0.push(carry);
            }
        }
        fn ge(&self, o: &Big) -> bool {
            let n = self.0.len().max(o.0.len());
            for i in (0..n).rev() {
                let (a, b) = (
                    self.0.get(i).copied().unwrap_or(0),
                    o.0.get(i).copied().unwrap_or(0),
                );
                if a != b {
                    return a > b;
                }
            }
            true
        }
        fn sub(&mut self, o: &Big) {
            let mut borrow = 0i64;
            for i in 0..self.0.len() {
                let v = self.0[i] as i64 - o.0.get(i).copied().unwrap_or(0) as i64 - borrow;
                borrow = (v < 0) as i64;
                self.0[i] = v.rem_euclid(1 << 32) as u32;
            }
        }
    }

    /// 10^k as a normalised 64-bit significand and binary exponent, rounded to nearest.
    fn power_of_ten(k: i32) -> Fp {
        let mut p = Big::one();
        for _ in 0..k.unsigned_abs() {
            p.mul_small(10);
        }
        let len = p.bits();
        if k >= 0 {
            // The top 64 bits, rounded on the next one.
            let mut f = 0u64;
            for i in 0..64 {
                let idx = len as isize - 1 - i as isize;
                f = (f << 1) | (idx >= 0 && p.bit(idx as usize)) as u64;
            }
            let round = len > 64 && p.bit(len - 65);
            let e = len as i32 - 64;
            match f.checked_add(round as u64) {
                Some(f) => Fp { f, e },
                None => Fp {
                    f: 1 << 63,
                    e: e + 1,
                },
            }
        } else {
            // floor(2^s / 10^-k) with s chosen so the quotient has exactly 64 bits.
            let s = len + 63;
            let mut rem = Big(vec![0]);
            let mut q = 0u64;
            for i in (0..=s).rev() {
                rem.shl1_or(i == s);
                let fits = rem.ge(&p);
                if fits {
                    rem.sub(&p);
                }
                if i < 64 {
                    q |= (fits as u64) << i;
                }
            }
            rem.shl1_or(false);
            let round = rem.ge(&p);
            match q.checked_add(round as u64) {
                Some(f) => Fp { f, e: -(s as i32) },
                None => Fp {
                    f: 1 << 63,
                    e: -(s as i32) + 1,
                },
            }
        }
    }

    fn cached_powers() -> &'static [Fp] {
        static TABLE: OnceLock<Vec<Fp>> = OnceLock::new();
        TABLE.get_or_init(|| {
            (MIN_DEC_EXP..=MAX_DEC_EXP)
                .step_by(DEC_STEP as usize)
                .map(power_of_ten)
                .collect()
        })
    }

    /// The cached power 10^k (and k) that brings binary exponent `e` into [ALPHA, GAMMA].
    fn cached_power_for(e: i32) -> (Fp, i32) {
        // k = ceil((ALPHA - e - 1) * log10(2)), in integers.
        let f = ALPHA - e - 1;
        let k = (f * 78913) / (1 << 18) + (f > 0) as i32;
        let index = ((-MIN_DEC_EXP + k + (DEC_STEP - 1)) / DEC_STEP) as usize;
        let table = cached_powers();
        let index = index.min(table.len() - 1);
        let c = table[index];
        debug_assert!((ALPHA..=GAMMA).contains(&(c.e + e + 64)));
        (c, MIN_DEC_EXP + index as i32 * DEC_STEP)
    }

    /// Moves the last digit towards `w` while that stays inside the interval.
    fn round(buf: &mut [u8], dist: u64, delta: u64, mut rest: u64, ten_k: u64) {
        let Some(last) = buf.last_mut() else { return };
        while rest < dist
            && delta - rest >= ten_k
            && (rest + ten_k < dist || dist - rest > rest + ten_k - dist)
        {
            *last -= 1;
            rest += ten_k;
        }
    }

    /// The decimal digits and exponent of a positive finite double (value = DIGITS * 10^exp).
    pub(super) fn digits(v: f64) -> (String, i32) {
        let bits = v.to_bits();
        let frac = bits & ((1 << 52) - 1);
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let (f, e) = if biased == 0 {
            (frac, 1 - 1075)
        } else {
            (frac | (1 << 52), biased - 1075)
        };
        let lower_closer = frac == 0 && biased > 1;
        let plus = Fp {
            f: 2 * f + 1,
            e: e - 1,
        }
        .normalize();
        let minus = if lower_closer {
            Fp {
                f: 4 * f - 1,
                e: e - 2,
            }
        } else {
            Fp {
                f: 2 * f - 1,
                e: e - 1,
            }
        };
        let minus = Fp {
            f: minus.f << (minus.e - plus.e),
            e: plus.e,
        };
        let w = Fp { f, e }.normalize();

        let (c, ck) = cached_power_for(plus.e);
        let w = w.mul(c);
        let mut lo = minus.mul(c);
        let mut hi = plus.mul(c);
        lo.f += 1;
        hi.f -= 1;
        let mut exp10 = -ck;

        let mut delta = hi.f - lo.f;
        let mut dist = hi.f - w.f;
        let shift = (-hi.e) as u32;
        let one = 1u64 << shift;
        let mut p1 = (hi.f >> shift) as u32;
        let mut p2 = hi.f & (one - 1);

        let mut buf: Vec<u8> = Vec::with_capacity(20);
        let mut pow10 = 1u32;
        let mut n = 1;
        while n < 10 && p1 as u64 >= pow10 as u64 * 10 {
            pow10 *= 10;
            n += 1;
        }
        while n > 0 {
            let d = p1 / pow10;
            p1 %= pow10;
            buf.push(b'0' + d as u8);
            n -= 1;
            let rest = ((p1 as u64) << shift) + p2;
            if rest <= delta {
                exp10 += n;
                round(&mut buf, dist, delta, rest, (pow10 as u64) << shift);
                return (String::from_utf8_lossy(&buf).into_owned(), exp10);
            }
            pow10 /= 10;
        }
        let mut m = 0;
        loop {
            p2 *= 10;
            delta *= 10;
            dist *= 10;
            buf.push(b'0' + (p2 >> shift) as u8);
            p2 &= one - 1;
            m += 1;
            if p2 <= delta {
                break;
            }
        }
        exp10 -= m;
        round(&mut buf, dist, delta, p2, one);
        (String::from_utf8_lossy(&buf).into_owned(), exp10)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn cached_powers_are_exact() {
            assert_eq!(power_of_ten(0), Fp { f: 1 << 63, e: -63 });
            assert_eq!(
                power_of_ten(1),
                Fp {
                    f: 0xA000_0000_0000_0000,
                    e: -60
                }
            );
            assert_eq!(
                power_of_ten(-300),
                Fp {
                    f: 0xAB70_FE17_C79A_C6CA,
                    e: -1060
                }
            );
            assert_eq!(
                power_of_ten(340),
                Fp {
                    f: 0xAF87_023B_9BF0_EE6B,
                    e: 1066
                }
            );
        }

        #[test]
        fn digits_read_back_exactly() {
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for _ in 0..20000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = f64::from_bits(x & 0x7fff_ffff_ffff_ffff);
                if !v.is_finite() || v == 0.0 {
                    continue;
                }
                let (d, e) = digits(v);
                let back: f64 = format!("{d}e{e}").parse().unwrap();
                assert_eq!(back, v, "{v:e} gave {d}e{e}");
                assert!(d.len() <= 17 && !d.starts_with('0'), "{v:e} gave {d}e{e}");
            }
        }

        #[test]
        // The 17-digit literal is the point of the last case: it is what nlohmann prints.
        #[allow(clippy::excessive_precision)]
        fn known_outputs() {
            assert_eq!(digits(1.44), ("144".into(), -2));
            assert_eq!(digits(1e16), ("1".into(), 16));
            assert_eq!(digits(5e-324), ("5".into(), -324));
            assert_eq!(digits(f64::MAX), ("17976931348623157".into(), 292));
            // Grisu2 is not always shortest: nlohmann prints 17 digits here.
            assert_eq!(
                digits(116.12066989062821),
                ("11612066989062821".into(), -14)
            );
        }
    }
}

/// The message for a string with a NUL byte, which Nix strings cannot hold.
pub fn nul_byte_error(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(bytes).replace('\0', "\u{2400}");
    format!(
        "input string '{shown}' cannot be represented as Nix string because it contains null bytes"
    )
}

/// Parses JSON text into a Nix value (objects become sets; on duplicate keys the last one
/// wins; integers that fit are integers, other numbers floats). Errors are worded like
/// nlohmann::json's, which CppNix reports as they are.
pub fn parse_json(text: &[u8]) -> Result<Value, String> {
    let mut p = Parser {
        s: text,
        pos: 0,
        token_start: 0,
    };
    // A UTF-8 byte order mark is skipped, as nlohmann::json does.
    if text.starts_with(b"\xef\xbb\xbf") {
        p.pos = 3;
        p.token_start = 3;
    }
    let first = p.next_token();
    let v = p.value(first)?;
    let last = p.next_token();
    if !matches!(last.tok, Tok::Eof) {
        return Err(p.unexpected(&last, "value", Some("end of input")));
    }
    Ok(v)
}

/// A lexical token.
enum Tok {
    BeginArray,
    EndArray,
    BeginObject,
    EndObject,
    NameSeparator,
    ValueSeparator,
    True,
    False,
    Null,
    String(Vec<u8>),
    Number(Result<Value, String>),
    Eof,
    /// A lexical error: the message and the index of the byte that caused it.
    Error(String, usize),
}

struct Token {
    tok: Tok,
    /// Index just past the token (one past the input for the end of input).
    end: usize,
}

impl Tok {
    /// nlohmann's name for a token type.
    fn name(&self) -> &'static str {
        match self {
            Tok::BeginArray => "'['",
            Tok::EndArray => "']'",
            Tok::BeginObject => "'{'",
            Tok::EndObject => "'}'",
            Tok::NameSeparator => "':'",
            Tok::ValueSeparator => "','",
            Tok::True => "true literal",
            Tok::False => "false literal",
            Tok::Null => "null literal",
            Tok::String(_) => "string literal",
            Tok::Number(_) => "number literal",
            Tok::Eof => "end of input",
            Tok::Error(..) => "<parse error>",
        }
    }
}

/// ASCII names of the control characters, for nlohmann's message about unescaped ones.
const CONTROL_NAMES: [&str; 32] = [
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
    "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC",
    "FS", "GS", "RS", "US",
];

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    /// Where the text nlohmann calls "last read" begins: the start of the last string or
    /// number token (other tokens and whitespace accumulate onto it).
    token_start: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn token(&self, tok: Tok) -> Token {
        Token { tok, end: self.pos }
    }

    fn lex_error(&self, msg: impl Into<String>, at: usize) -> Token {
        Token {
            tok: Tok::Error(msg.into(), at),
            end: at + 1,
        }
    }

    fn next_token(&mut self) -> Token {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
        let Some(c) = self.peek() else {
            return Token {
                tok: Tok::Eof,
                end: self.s.len() + 1,
            };
        };
        let single = match c {
            b'[' => Some(Tok::BeginArray),
            b']' => Some(Tok::EndArray),
            b'{' => Some(Tok::BeginObject),
            b'}' => Some(Tok::EndObject),
            b':' => Some(Tok::NameSeparator),
            b',' => Some(Tok::ValueSeparator),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return self.token(t);
        }
        match c {
            b't' => self.literal(b"true", Tok::True),
            b'f' => self.literal(b"false", Tok::False),
            b'n' => self.literal(b"null", Tok::Null),
            b'"' => {
                self.token_start = self.pos;
                match self.string() {
                    Ok(s) => self.token(Tok::String(s)),
                    Err(t) => t,
                }
            }
            b'-' | b'0'..=b'9' => {
                self.token_start = self.pos;
                self.number()
            }
            _ => self.lex_error("invalid literal", self.pos),
        }
    }

    fn literal(&mut self, word: &[u8], tok: Tok) -> Token {
        for &c in word {
            if self.peek() != Some(c) {
                return self.lex_error("invalid literal", self.pos);
            }
            self.pos += 1;
        }
        self.token(tok)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn number(&mut self) -> Token {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.lex_error("invalid number; expected digit after '-'", self.pos),
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            is_float = true;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.lex_error("invalid number; expected digit after '.'", self.pos);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            is_float = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
                if !matches!(self.peek(), Some(b'0'..=b'9')) {
                    return self.lex_error(
                        "invalid number; expected digit after exponent sign",
                        self.pos,
                    );
                }
            } else if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.lex_error(
                    "invalid number; expected '+', '-', or digit after exponent",
                    self.pos,
                );
            }
            self.digits();
        }
        // Only ASCII digits, signs, '.' and 'e' were accepted above.
        let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        let value = (|| {
            if !is_float {
                if let Ok(n) = text.parse::<i64>() {
                    return Ok(Value::Int(n));
                }
                if let Ok(n) = text.parse::<u64>() {
                    return Err(format!(
                        "unsigned json number {n} outside of Nix integer range"
                    ));
                }
            }
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Value::float(f)),
                _ => Err(format!(
                    "[json.exception.out_of_range.406] number overflow parsing '{text}'"
                )),
            }
        })();
        self.token(Tok::Number(value))
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = (self.peek()? as char).to_digit(16)?;
            n = n * 16 + d;
            self.pos += 1;
        }
        Some(n)
    }

    /// A string literal (the cursor is on its opening quote), unescaped.
    fn string(&mut self) -> Result<Vec<u8>, Token> {
        const HEX: &str = "invalid string: '\\u' must be followed by 4 hex digits";
        const LOW: &str =
            "invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF";
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            // Plain ASCII is copied in runs; the rest goes through the cases below.
            let rest = &self.s[self.pos..];
            let run = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))
                .unwrap_or(rest.len());
            out.extend_from_slice(&rest[..run]);
            self.pos += run;
            let Some(c) = self.peek() else {
                return Err(self.lex_error("invalid string: missing closing quote", self.s.len()));
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let e = self.peek();
                    self.pos += 1;
                    match e {
                        Some(b'"') => out.push(b'"'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'/') => out.push(b'/'),
                        Some(b'b') => out.push(8),
                        Some(b'f') => out.push(12),
                        Some(b'n') => out.push(b'\n'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b't') => out.push(b'\t'),
                        Some(b'u') => {
                            let Some(mut cp) = self.hex4() else {
                                return Err(self.lex_error(HEX, self.pos));
                            };
                            if (0xd800..0xdc00).contains(&cp) {
                                if self.peek() != Some(b'\\') {
                                    return Err(self.lex_error(LOW, self.pos));
                                }
                                self.pos += 1;
                                if self.peek() != Some(b'u') {
                                    return Err(self.lex_error(LOW, self.pos));
                                }
                                self.pos += 1;
                                let Some(lo) = self.hex4() else {
                                    return Err(self.lex_error(HEX, self.pos));
                                };
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(self.lex_error(LOW, self.pos - 1));
                                }
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                            } else if (0xdc00..0xe000).contains(&cp) {
                                return Err(self.lex_error(
                                    "invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF",
                                    self.pos - 1,
                                ));
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            return Err(self.lex_error(
                                "invalid string: forbidden character after backslash",
                                self.pos - 1,
                            ))
                        }
                    }
                }
                0..=0x1f => {
                    let name = CONTROL_NAMES[c as usize];
                    let short = match c {
                        8 => " or \\b",
                        9 => " or \\t",
                        10 => " or \\n",
                        12 => " or \\f",
                        13 => " or \\r",
                        _ => "",
                    };
                    return Err(self.lex_error(
                        format!(
                            "invalid string: control character U+{c:04X} ({name}) must be escaped to \\u{c:04X}{short}"
                        ),
                        self.pos,
                    ));
                }
                0x80.. => {
                    // One UTF-8 sequence, checked.
                    let rest = &self.s[self.pos..];
                    let len = match std::str::from_utf8(&rest[..rest.len().min(4)]) {
                        Ok(s) => s.chars().next().map(char::len_utf8),
                        Err(e) => std::str::from_utf8(&rest[..e.valid_up_to()])
                            .ok()
                            .and_then(|s| s.chars().next())
                            .map(char::len_utf8),
                    };
                    let Some(len) = len else {
                        return Err(
                            self.lex_error("invalid string: ill-formed UTF-8 byte", self.pos)
                        );
                    };
                    out.extend_from_slice(&rest[..len]);
                    self.pos += len;
                }
                _ => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `line L, column C` after reading `consumed` bytes (plus one for the end of input).
    fn position(&self, consumed: usize) -> (usize, usize) {
        let read = &self.s[..consumed.min(self.s.len())];
        let line = read.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = read
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        (line, consumed - line_start)
    }

    /// The syntax error for token `t` where `context` was being parsed and `expected` (if any)
    /// would have been right.
    fn unexpected(&self, t: &Token, context: &str, expected: Option<&str>) -> String {
        let detail = match &t.tok {
            Tok::Error(msg, at) => {
                let end = (at + 1).min(self.s.len());
                let mut last = String::new();
                for ch in String::from_utf8_lossy(&self.s[self.token_start.min(end)..end]).chars() {
                    if (ch as u32) < 0x20 {
                        last.push_str(&format!("<U+{:04X}>", ch as u32));
                    } else {
                        last.push(ch);
                    }
                }
                format!("{msg}; last read: '{last}'")
            }
            other => format!("unexpected {}", other.name()),
        };
        let expected = match expected {
            Some(e) => format!("; expected {e}"),
            None => String::new(),
        };
        let (line, column) = self.position(t.end);
        format!(
            "[json.exception.parse_error.101] parse error at line {line}, column {column}: syntax error while parsing {context} - {detail}{expected}"
        )
    }

    fn value(&mut self, t: Token) -> Result<Value, String> {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || self.value_inner(t))
    }

    fn value_inner(&mut self, t: Token) -> Result<Value, String> {
        match t.tok {
            Tok::BeginArray => self.array(),
            Tok::BeginObject => self.object(),
            Tok::String(s) => {
                if s.contains(&0) {
                    return Err(nul_byte_error(&s));
                }
                Ok(Value::string(s))
            }
            Tok::Number(n) => n,
            Tok::True => Ok(Value::bool(true)),
            Tok::False => Ok(Value::bool(false)),
            Tok::Null => Ok(Value::Null),
            Tok::Error(..) => Err(self.unexpected(&t, "value", None)),
            _ => Err(self.unexpected(&t, "value", Some("'[', '{', or a literal"))),
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        let mut items = Vec::new();
        let mut t = self.next_token();
        if matches!(t.tok, Tok::EndArray) {
            return Ok(Value::list(items));
        }
        loop {
            items.push(self.value(t)?);
            let sep = self.next_token();
            match sep.tok {
                Tok::ValueSeparator => t = self.next_token(),
                Tok::EndArray => return Ok(Value::list(items)),
                _ => return Err(self.unexpected(&sep, "array", Some("']'"))),
            }
        }
    }

    fn object(&mut self) -> Result<Value, String> {
        let mut entries = Vec::new();
        let mut t = self.next_token();
        if !matches!(t.tok, Tok::EndObject) {
            loop {
                let Tok::String(key) = t.tok else {
                    return Err(self.unexpected(&t, "object key", Some("string literal")));
                };
                if key.contains(&0) {
                    return Err(nul_byte_error(&key));
                }
                let sep = self.next_token();
                if !matches!(sep.tok, Tok::NameSeparator) {
                    return Err(self.unexpected(&sep, "object separator", Some("':'")));
                }
                let v = self.next_token();
                let value = self.value(v)?;
                entries.push(AttrEntry {
                    name: Symbol::intern_bytes(&key),
                    value,
                    pos: (None).into(),
                });
                let sep = self.next_token();
                match sep.tok {
                    Tok::ValueSeparator => t = self.next_token(),
                    Tok::EndObject => break,
                    _ => return Err(self.unexpected(&sep, "object", Some("'}'"))),
                }
            }
        }
        // For duplicate keys the last one wins: `from_unsorted` keeps the first it sees.
        entries.reverse();
        Ok(Value::attrs(Attrs::from_unsorted(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EvalConfig;

    use crate::testing::eval;

    fn to_json(src: &str) -> Result<String, String> {
        let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
        let v = ev
            .eval_source(
                "«test»".into(),
                src.into(),
                std::env::current_dir().unwrap(),
            )
            .map_err(|e| e.kind.to_string())?;
        ev.to_json(v, None).map_err(|e| e.kind.to_string())
    }

    #[test]
    fn to_json_basic_values() {
        assert_eq!(
            to_json(
                r#"{ a = 123; b = -456; c = "foo\n\"bar\""; e = true; n = null; g = [ 1 [ ] { } ]; }"#
            ),
            Ok(r#"{"a":123,"b":-456,"c":"foo\n\"bar\"","e":true,"g":[1,[],{}],"n":null}"#.into())
        );
        assert_eq!(
            to_json(r#""\u0001 é \t""#.replace("\\u0001", "\u{1}").as_str()),
            Ok("\"\\u0001 é \\t\"".into())
        );
    }

    #[test]
    fn to_json_floats_like_nlohmann() {
        assert_eq!(json_float(1.44), "1.44");
        assert_eq!(json_float(1.0), "1.0");
        assert_eq!(json_float(-0.0), "-0.0");
        assert_eq!(json_float(1e20), "1e+20");
        assert_eq!(json_float(1e15), "1e+15");
        assert_eq!(json_float(1e14), "100000000000000.0");
        assert_eq!(json_float(0.001), "0.001");
        assert_eq!(json_float(1e-5), "1e-05");
        assert_eq!(json_float(1.5e-7), "1.5e-07");
        assert_eq!(json_float(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(json_float(6.626e-34), "6.626e-34");
        assert_eq!(
            json_float(1.7976931348623157e308),
            "1.7976931348623157e+308"
        );
    }

    #[test]
    fn to_json_peels_to_string_and_out_path() {
        assert_eq!(
            to_json(r#"{ __toString = self: "won"; outPath = abort "no"; }"#),
            Ok(r#""won""#.into())
        );
        assert_eq!(to_json(r#"{ outPath = 42; }"#), Ok("42".into()));
        assert_eq!(
            to_json(r#"{ __toString = self: { outPath = "deep"; }; }"#),
            Ok(r#""deep""#.into())
        );
        assert_eq!(
            to_json(r#"{ outPath = { a = 1; b = 2; }; }"#),
            Ok(r#"{"a":1,"b":2}"#.into())
        );
        assert_eq!(
            to_json(r#"{ __toString = self: 42; }"#),
            Err("`__toString` should return a string, but got an integer: 42".into())
        );
        assert_eq!(
            to_json(r#"{ __toString = self: { a = 1; }; }"#),
            Err("`__toString` must return a string, but got a set: { a = 1; }".into())
        );
        assert_eq!(
            to_json(r#"{ outPath = { __toString = self: 42; }; }"#),
            Err("`__toString` should return a string, but got an integer: 42".into())
        );
    }

    #[test]
    fn to_json_errors() {
        assert_eq!(
            to_json("x: x"),
            Err("cannot convert a function to JSON".into())
        );
        assert_eq!(
            to_json("builtins.map"),
            Err("cannot convert the built-in function 'map' to JSON".into())
        );
        assert_eq!(
            to_json(r#"{ a.b = [ (throw "hah no") ]; }"#),
            Err("hah no".into())
        );
        assert_eq!(
            to_json("let l = builtins.genList (x: x) 20000; in builtins.foldl' (t: h: { inherit h t; }) null l"),
            Err("stack overflow; max-call-depth exceeded".into())
        );
        let mut s = String::new();
        assert_eq!(
            write_json_string(b"_invalid UTF-8: \xff_", &mut s),
            Err("JSON serialization error: [json.exception.type_error.316] invalid UTF-8 byte at index 16: 0xFF".into())
        );
        assert_eq!(
            check_utf8(b"a\xe0\x80"),
            Err("JSON serialization error: [json.exception.type_error.316] invalid UTF-8 byte at index 2: 0x80".into())
        );
        assert_eq!(
            check_utf8(b"a\xe2\x82"),
            Err("JSON serialization error: [json.exception.type_error.316] incomplete UTF-8 string; last byte: 0x82".into())
        );
    }

    #[test]
    fn to_json_keeps_context() {
        let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
        let mut ctx = Context::new();
        ctx.insert(ContextElem::Plain("/nix/store/aaa-x".into()));
        let s = Value::String(Rc::new(NixString::with_context(
            b"/nix/store/aaa-x".to_vec(),
            ctx.clone(),
        )));
        let out = ev.to_json_string(Value::list(vec![s]), None).unwrap();
        assert_eq!(out.as_bytes(), br#"["/nix/store/aaa-x"]"#);
        assert_eq!(out.context(), Some(&ctx));
    }

    #[test]
    fn from_json_values() {
        assert_eq!(
            eval(
                r#"builtins.fromJSON ''{"a": [1, -2, 3.5, true, false, null, "x\u00e9\n"], "b": {}}''"#
            ),
            Ok(r#"{ a = [ 1 -2 3.5 true false null "xé\n" ]; b = { }; }"#.into())
        );
        assert_eq!(
            eval(r#"builtins.fromJSON ''{"a":1,"a":2}''"#),
            Ok("{ a = 2; }".into())
        );
        assert_eq!(
            eval(r#"builtins.fromJSON "-9223372036854775809""#),
            Ok("-9.22337e+18".into())
        );
        assert_eq!(
            eval(r#"builtins.fromJSON ''"\ud83d\ude00"''"#),
            Ok("\"😀\"".into())
        );
    }

    #[test]
    fn from_json_errors() {
        assert_eq!(
            eval(r#"builtins.fromJSON ''{"attr": 18446744073709551615}''"#),
            Err("unsigned json number 18446744073709551615 outside of Nix integer range".into())
        );
        assert_eq!(
            eval(r#"builtins.fromJSON ''"a\u0000b"''"#),
            Err("input string 'a␀b' cannot be represented as Nix string because it contains null bytes".into())
        );
        assert_eq!(
            eval(r#"builtins.fromJSON ''{"a\u0000b": 1}''"#),
            Err("input string 'a␀b' cannot be represented as Nix string because it contains null bytes".into())
        );
        assert_eq!(
            eval(r#"builtins.fromJSON "1e400""#),
            Err("[json.exception.out_of_range.406] number overflow parsing '1e400'".into())
        );
        assert_eq!(
            eval(r#"builtins.fromJSON " ""#),
            Err("[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal".into())
        );
        // Messages checked against CppNix (nlohmann::json).
        let parse_errors = [
            ("[1, tru]", "parse error at line 1, column 8: syntax error while parsing value - invalid literal; last read: '1, tru]'"),
            ("[1 2]", "parse error at line 1, column 4: syntax error while parsing array - unexpected number literal; expected ']'"),
            ("{1:2}", "parse error at line 1, column 2: syntax error while parsing object key - unexpected number literal; expected string literal"),
            ("{\"a\" 1}", "parse error at line 1, column 6: syntax error while parsing object separator - unexpected number literal; expected ':'"),
            ("[1,]", "parse error at line 1, column 4: syntax error while parsing value - unexpected ']'; expected '[', '{', or a literal"),
            ("1.", "parse error at line 1, column 3: syntax error while parsing value - invalid number; expected digit after '.'; last read: '1.'"),
            ("{\"a\":1}x", "parse error at line 1, column 8: syntax error while parsing value - invalid literal; last read: '1}x'; expected end of input"),
        ];
        for (input, want) in parse_errors {
            let got = parse_json(input.as_bytes()).err();
            let want = format!("[json.exception.parse_error.101] {want}");
            assert_eq!(got, Some(want), "input {input}");
        }
        assert_eq!(
            eval("builtins.fromJSON 1"),
            Err("expected a string but found an integer: 1".into())
        );
    }

    #[test]
    fn json_round_trip() {
        assert_eq!(
            eval(
                r#"let v = { a = [ 1 2.5 "s" null ]; b.c = true; }; in builtins.fromJSON (builtins.toJSON v) == v"#
            ),
            Ok("true".into())
        );
    }
}
