//! `builtins.match` and `builtins.split`: POSIX extended regular expressions.
//!
//! Nix hands patterns to a POSIX ERE engine. We translate the POSIX syntax into the syntax of
//! the `regex-automata` engine (the engine under the `regex` crate), working on bytes since
//! Nix strings are bytes:
//!
//! - `.` and negated bracket expressions match any byte, newline included;
//! - bracket expressions follow POSIX: a leading `]` is a literal, `\` is a literal, `-` is
//!   a literal first or last, `[:class:]`, `[.c.]` and `[=c=]` are understood;
//! - outside brackets only the special characters `.[\()*+?{|^$` may be escaped; any other
//!   escape is an error, as in Nix;
//! - repetition operators apply greedily, even when stacked (`a+?` is `(a+)?`, not lazy).
//!
//! Matching follows POSIX where it matters in practice: `split` takes the longest match at
//! the leftmost position (`a|ab` matches `ab`), and the capture groups are those of the first
//! way, in pattern order, to match exactly that text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind};

use super::control::primop;
use super::fail;
use super::strings::{arg_frame, force_string_no_ctx};
use crate::error::{AddContext, EvalResult};
use crate::eval::Evaluator;
use crate::source::Span;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("match", 2, builtin_match),
    primop!("split", 2, builtin_split),
];

/// A translated pattern, compiled in the forms the searches need.
pub struct PosixRegex {
    /// `(?:P)`, leftmost-first: finds where the next match starts.
    search: Regex,
    /// `(?:P)` reporting all match states: an anchored search gives the longest match.
    /// (None if the engine cannot build it; then the leftmost-first match is used.)
    longest: Option<Regex>,
    /// `(?:P)$`, leftmost-first: a match that must run to the end of the haystack.
    to_end: Regex,
    /// Whether the pattern uses `$` (then a truncated haystack would change its meaning).
    has_dollar: bool,
}

/// Translation failed: the pattern is not a valid POSIX ERE.
#[derive(Debug)]
pub struct BadRegex;

/// Why a pattern could not be compiled.
#[derive(Debug, PartialEq, Eq)]
pub enum RegexError {
    /// Not a valid POSIX ERE.
    Invalid,
    /// Valid, but its automaton would be too big.
    TooBig,
}

impl From<BadRegex> for RegexError {
    fn from(_: BadRegex) -> RegexError {
        RegexError::Invalid
    }
}

/// A match: its start, its end and the spans of its capture groups.
type Found = (usize, usize, Vec<Option<(usize, usize)>>);

/// The POSIX character classes Nix's engine accepts inside `[[:name:]]`, with the name the
/// target syntax uses.
fn class_name(name: &[u8]) -> Option<&'static str> {
    Some(match name {
        b"alnum" => "alnum",
        b"alpha" => "alpha",
        b"blank" => "blank",
        b"cntrl" => "cntrl",
        b"digit" | b"d" => "digit",
        b"graph" => "graph",
        b"lower" => "lower",
        b"print" => "print",
        b"punct" => "punct",
        b"space" | b"s" => "space",
        b"upper" => "upper",
        b"xdigit" => "xdigit",
        b"w" => "word",
        _ => return None,
    })
}

/// Writes byte `b` as a literal of the target syntax.
fn push_literal(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() {
        out.push(b as char);
    } else {
        out.push_str(&format!("\\x{b:02X}"));
    }
}

/// Characters that may follow a `\` outside a bracket expression.
const ESCAPABLE: &[u8] = b".[\\()*+?{|^$";

/// Translates a POSIX ERE into the target syntax. Also reports whether it uses `$`.
pub fn translate(p: &[u8]) -> Result<(String, bool), BadRegex> {
    let mut out = String::with_capacity(p.len() * 2);
    // Where the last atom starts in `out` (None at the start of a branch, where a
    // repetition operator has nothing to apply to), and whether it is already repeated.
    let mut last_atom: Option<usize> = None;
    let mut repeated = false;
    let mut open_groups: Vec<usize> = Vec::new();
    let mut has_dollar = false;
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            b'(' => {
                open_groups.push(out.len());
                out.push('(');
                last_atom = None;
            }
            b')' => {
                let start = open_groups.pop().ok_or(BadRegex)?;
                out.push(')');
                last_atom = Some(start);
                repeated = false;
            }
            b'|' => {
                out.push('|');
                last_atom = None;
            }
            b'^' => {
                out.push('^');
                last_atom = None;
            }
            b'$' => {
                out.push('$');
                has_dollar = true;
                last_atom = None;
            }
            b'*' => repeat(&mut out, last_atom, &mut repeated, 0, None)?,
            b'+' => repeat(&mut out, last_atom, &mut repeated, 1, None)?,
            b'?' => repeat(&mut out, last_atom, &mut repeated, 0, Some(1))?,
            b'{' => {
                let (min, max, next) = interval(p, i)?;
                i = next;
                repeat(&mut out, last_atom, &mut repeated, min, max)?;
            }
            b'.' => {
                last_atom = Some(out.len());
                repeated = false;
                out.push('.');
            }
            b'[' => {
                last_atom = Some(out.len());
                repeated = false;
                i = bracket(p, i, &mut out)?;
            }
            b'\\' => {
                let d = *p.get(i).ok_or(BadRegex)?;
                if !ESCAPABLE.contains(&d) {
                    return Err(BadRegex);
                }
                i += 1;
                last_atom = Some(out.len());
                repeated = false;
                push_literal(&mut out, d);
            }
            _ => {
                last_atom = Some(out.len());
                repeated = false;
                push_literal(&mut out, c);
            }
        }
    }
    if !open_groups.is_empty() {
        return Err(BadRegex);
    }
    Ok((out, has_dollar))
}

/// The target syntax of a repetition of `min` to `max` (unbounded if None) times.
fn repetition(min: u32, max: Option<u32>) -> String {
    match (min, max) {
        (0, None) => "*".into(),
        (1, None) => "+".into(),
        (0, Some(1)) => "?".into(),
        (n, None) => format!("{{{n},}}"),
        (n, Some(m)) if n == m => format!("{{{n}}}"),
        (n, Some(m)) => format!("{{{n},{m}}}"),
    }
}

/// Whether a translated expression can match the empty string anywhere (it is nullable and
/// has no anchors).
fn matches_empty_anywhere(src: &str) -> bool {
    let cfg = syntax::Config::new().unicode(false).utf8(false);
    match syntax::parse_with(src, &cfg) {
        Ok(hir) => {
            let props = hir.properties();
            props.minimum_len() == Some(0) && props.look_set().is_empty()
        }
        Err(_) => false,
    }
}

/// `src` with its capture groups made non-capturing. (In translated text every `(` opens a
/// group: literal parentheses are written as escapes.)
fn without_captures(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 8);
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '(' && chars.peek() != Some(&'?') {
            out.push_str("?:");
        }
    }
    out
}

/// Applies a repetition of `min` to `max` times to the last atom. A second operator on the
/// same atom applies to the repeated atom (POSIX has no lazy operators).
///
/// Nix's engine ends the repetition of a capture group that can match the empty string with
/// one more, empty, iteration whenever the bound allows it, so such a group captures `""`
/// (`(a*)*` on `aa` captures `""`). We reproduce that by spelling `(X){n,m}` as
/// `(?:X){n-1,m-1}(X)`, where the last copy is the one that captures.
fn repeat(
    out: &mut String,
    last_atom: Option<usize>,
    repeated: &mut bool,
    min: u32,
    max: Option<u32>,
) -> Result<(), BadRegex> {
    let start = last_atom.ok_or(BadRegex)?;
    if *repeated {
        out.insert_str(start, "(?:");
        out.push(')');
    }
    let is_capture = !*repeated && out[start..].starts_with('(') && !out[start..].starts_with("(?");
    *repeated = true;
    if is_capture && max.is_none_or(|m| m >= 2) {
        let body = &out[start + 1..out.len() - 1];
        if matches_empty_anywhere(body) {
            let group = out[start..].to_string();
            let rest = repetition(min.saturating_sub(1), max.map(|m| m - 1));
            let spelled = format!("(?:(?:{}){rest}{group})", without_captures(body));
            out.truncate(start);
            out.push_str(&spelled);
            return Ok(());
        }
    }
    out.push_str(&repetition(min, max));
    Ok(())
}

/// Parses an interval `{n}`, `{n,}` or `{n,m}` whose `{` is just before `i`.
fn interval(p: &[u8], mut i: usize) -> Result<(u32, Option<u32>, usize), BadRegex> {
    let number = |i: &mut usize| -> Option<u32> {
        let start = *i;
        while *i < p.len() && p[*i].is_ascii_digit() {
            *i += 1;
        }
        std::str::from_utf8(&p[start..*i]).ok()?.parse().ok()
    };
    let min = number(&mut i).ok_or(BadRegex)?;
    let max = if p.get(i) == Some(&b',') {
        i += 1;
        if p.get(i) == Some(&b'}') {
            None
        } else {
            Some(number(&mut i).ok_or(BadRegex)?)
        }
    } else {
        Some(min)
    };
    if p.get(i) != Some(&b'}') {
        return Err(BadRegex);
    }
    i += 1;
    if max.is_some_and(|m| m < min) {
        return Err(BadRegex);
    }
    Ok((min, max, i))
}

/// One element of a bracket expression that can be a range endpoint.
fn bracket_char(p: &[u8], i: &mut usize) -> Result<u8, BadRegex> {
    let c = *p.get(*i).ok_or(BadRegex)?;
    if c == b'[' && matches!(p.get(*i + 1), Some(b'.') | Some(b'=')) {
        let kind = p[*i + 1];
        let name_start = *i + 2;
        let close = find_close(p, name_start, kind)?;
        let name = &p[name_start..close];
        // Only single letters and digits are known collating elements.
        if name.len() != 1 || !name[0].is_ascii_alphanumeric() {
            return Err(BadRegex);
        }
        *i = close + 2;
        return Ok(name[0]);
    }
    *i += 1;
    Ok(c)
}

/// The index of `kind` followed by `]`, searching from `from`.
fn find_close(p: &[u8], from: usize, kind: u8) -> Result<usize, BadRegex> {
    (from..p.len().saturating_sub(1))
        .find(|&j| p[j] == kind && p[j + 1] == b']')
        .ok_or(BadRegex)
}

/// Translates the bracket expression whose `[` is just before `i`; returns the index after
/// its `]`.
fn bracket(p: &[u8], mut i: usize, out: &mut String) -> Result<usize, BadRegex> {
    out.push('[');
    if p.get(i) == Some(&b'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *p.get(i).ok_or(BadRegex)?;
        if c == b']' && !first {
            out.push(']');
            return Ok(i + 1);
        }
        first = false;
        if c == b'[' && p.get(i + 1) == Some(&b':') {
            let close = find_close(p, i + 2, b':')?;
            let name = class_name(&p[i + 2..close]).ok_or(BadRegex)?;
            out.push_str(&format!("[:{name}:]"));
            i = close + 2;
            // A class cannot start a range.
            if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|&d| d != b']') {
                return Err(BadRegex);
            }
            continue;
        }
        let lo = bracket_char(p, &mut i)?;
        if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|&d| d != b']') {
            i += 1;
            let hi = bracket_char(p, &mut i)?;
            if hi < lo {
                return Err(BadRegex);
            }
            // A range end cannot start another range (`[a-c-e]`).
            if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|&d| d != b']') {
                return Err(BadRegex);
            }
            push_literal(out, lo);
            out.push('-');
            push_literal(out, hi);
        } else {
            push_literal(out, lo);
        }
    }
}

impl PosixRegex {
    /// Compiles a POSIX ERE.
    pub fn new(pattern: &[u8]) -> Result<PosixRegex, RegexError> {
        let (body, has_dollar) = translate(pattern)?;
        let syn = syntax::Config::new()
            .unicode(false)
            .utf8(false)
            .dot_matches_new_line(true);
        let build = |src: &str, kind: MatchKind| -> Result<Regex, RegexError> {
            Regex::builder()
                .syntax(syn)
                .configure(meta::Config::new().match_kind(kind).utf8_empty(false))
                .build(src)
                .map_err(|e| {
                    if e.size_limit().is_some() {
                        RegexError::TooBig
                    } else {
                        RegexError::Invalid
                    }
                })
        };
        let group = format!("(?:{body})");
        Ok(PosixRegex {
            search: build(&group, MatchKind::LeftmostFirst)?,
            longest: build(&group, MatchKind::All).ok(),
            to_end: build(&format!("{group}$"), MatchKind::LeftmostFirst)?,
            has_dollar,
        })
    }

    /// The capture groups (without the whole match) of a match of all of `hay`, if any.
    pub fn match_whole(&self, hay: &[u8]) -> Option<Vec<Option<(usize, usize)>>> {
        let mut caps = self.to_end.create_captures();
        self.to_end
            .search_captures(&Input::new(hay).anchored(Anchored::Yes), &mut caps);
        caps.is_match().then(|| groups(&caps))
    }

    /// The longest match starting exactly at `at`.
    fn longest_at(&self, hay: &[u8], at: usize) -> Option<usize> {
        let input = Input::new(hay).range(at..).anchored(Anchored::Yes);
        match &self.longest {
            Some(re) => re.search(&input).map(|m| m.end()),
            None => self.search.search(&input).map(|m| m.end()),
        }
    }

    /// The next match at or after `from` (or, when `nonempty_at_from`, a non-empty match
    /// at `from` or any match after it), as (start, end, groups).
    fn next_match(&self, hay: &[u8], mut from: usize, nonempty_at_from: bool) -> Option<Found> {
        let span = if nonempty_at_from {
            match self.longest_at(hay, from) {
                Some(end) if end > from => Some((from, end)),
                _ => {
                    from += 1;
                    None
                }
            }
        } else {
            None
        };
        let (start, end) = match span {
            Some(s) => s,
            None => {
                if from > hay.len() {
                    return None;
                }
                let m = self.search.search(&Input::new(hay).range(from..))?;
                let end = self.longest_at(hay, m.start()).unwrap_or(m.end());
                (m.start(), end.max(m.end()))
            }
        };
        Some((start, end, self.groups_of(hay, start, end)))
    }

    /// The capture groups of the first way (in pattern order) to match `hay[start..end]`.
    fn groups_of(&self, hay: &[u8], start: usize, end: usize) -> Vec<Option<(usize, usize)>> {
        if end == hay.len() || !self.has_dollar {
            let mut caps = self.to_end.create_captures();
            let input = Input::new(&hay[..end])
                .range(start..end)
                .anchored(Anchored::Yes);
            self.to_end.search_captures(&input, &mut caps);
            if caps.is_match() {
                return groups(&caps);
            }
        }
        let mut caps = self.search.create_captures();
        let input = Input::new(hay).range(start..).anchored(Anchored::Yes);
        self.search.search_captures(&input, &mut caps);
        groups(&caps)
    }

    /// All matches for `split`, in order, following POSIX `regex_iterator` rules: after an
    /// empty match the next one must be non-empty or start later; after a non-empty match
    /// an empty match may follow at its end.
    pub fn split_matches(&self, hay: &[u8]) -> Vec<Found> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut after_empty = false;
        while pos <= hay.len() {
            let Some((start, end, g)) = self.next_match(hay, pos, after_empty) else {
                break;
            };
            after_empty = start == end;
            pos = end;
            out.push((start, end, g));
        }
        out
    }
}

fn groups(caps: &Captures) -> Vec<Option<(usize, usize)>> {
    (1..caps.group_len())
        .map(|i| caps.get_group(i).map(|s| (s.start, s.end)))
        .collect()
}

thread_local! {
    static CACHE: RefCell<HashMap<Vec<u8>, Rc<PosixRegex>>> = RefCell::new(HashMap::new());
}

/// Most-used patterns stay compiled; the cache is dropped when it grows past this.
const CACHE_MAX: usize = 4096;

/// Compiles `pattern`, reusing an earlier compilation of the same pattern.
fn compile(pattern: &NixString, span: Option<Span>) -> EvalResult<Rc<PosixRegex>> {
    let key = pattern.as_bytes();
    if let Some(r) = CACHE.with(|c| c.borrow().get(key).cloned()) {
        return Ok(r);
    }
    match PosixRegex::new(key) {
        Ok(r) => {
            let r = Rc::new(r);
            CACHE.with(|c| {
                let mut c = c.borrow_mut();
                if c.len() >= CACHE_MAX {
                    c.clear();
                }
                c.insert(key.to_vec(), r.clone());
            });
            Ok(r)
        }
        Err(RegexError::Invalid) => fail(
            format!("invalid regular expression '{}'", pattern.to_str_lossy()),
            span,
        ),
        Err(RegexError::TooBig) => fail(
            format!(
                "memory limit exceeded by regular expression '{}'",
                pattern.to_str_lossy()
            ),
            span,
        ),
    }
}

fn group_values(hay: &[u8], groups: &[Option<(usize, usize)>]) -> Value {
    Value::list(
        groups
            .iter()
            .map(|g| match g {
                Some((s, e)) => Value::string(hay[*s..*e].to_vec()),
                None => Value::Null,
            })
            .collect(),
    )
}

fn builtin_match(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let pattern = force_string_no_ctx(ev, a[0].clone(), s)
        .context(s, || arg_frame("the first argument", "match"))?;
    let re = compile(&pattern, s)?;
    let hay = ev
        .force_string(a[1].clone(), s)
        .context(s, || arg_frame("the second argument", "match"))?;
    let hay = hay.as_bytes();
    Ok(match re.match_whole(hay) {
        Some(g) => group_values(hay, &g),
        None => Value::Null,
    })
}

fn builtin_split(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let pattern = force_string_no_ctx(ev, a[0].clone(), s)
        .context(s, || arg_frame("the first argument", "split"))?;
    let re = compile(&pattern, s)?;
    let hay = ev
        .force_string(a[1].clone(), s)
        .context(s, || arg_frame("the second argument", "split"))?;
    let hay = hay.as_bytes();
    let mut out = Vec::new();
    let mut last = 0;
    for (start, end, g) in re.split_matches(hay) {
        out.push(Value::string(hay[last..start].to_vec()));
        out.push(group_values(hay, &g));
        last = end;
    }
    out.push(Value::string(hay[last..].to_vec()));
    Ok(Value::list(out))
}

#[cfg(test)]
mod tests {
    use super::super::strings::tests::{err, ok};

    fn m(re: &str, s: &str, want: &str) {
        ok(
            &format!("builtins.match {} {}", nix_str(re), nix_str(s)),
            want,
        );
    }

    fn sp(re: &str, s: &str, want: &str) {
        ok(
            &format!("builtins.split {} {}", nix_str(re), nix_str(s)),
            want,
        );
    }

    fn nix_str(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '$' => out.push_str("\\$"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn match_basics() {
        m("foobar", "foobar", "[ ]");
        m("fo*", "f", "[ ]");
        m("fo+", "f", "null");
        m("fo{1,2}", "foo", "[ ]");
        m("fo{1,2}", "fooo", "null");
        m("fo*", "foobar", "null");
        m("(.*)\\.nix", "foobar.nix", "[ \"foobar\" ]");
        m(
            "((.*)/)?([^/]*)\\.(nix|cc)",
            "foobar.cc",
            "[ null null \"foobar\" \"cc\" ]",
        );
        m(
            "((.*)/)?([^/]*)\\.(nix|cc)",
            "/path/to/foobar.nix",
            "[ \"/path/to/\" \"/path/to\" \"foobar\" \"nix\" ]",
        );
        m("(a)(b)?", "a", "[ \"a\" null ]");
        m("(a)|b", "b", "[ null ]");
        m("(a*)+", "", "[ \"\" ]");
        m("(a*)*", "b", "null");
        m("()", "", "[ \"\" ]");
        m("(.+)+(.+)", "17.0.14+7", "[ \"17.0.14+\" \"7\" ]");
        // A repeated group that can match nothing ends with an empty iteration, as in Nix.
        m("(a*)*", "aa", "[ \"\" ]");
        m("(a*)*", "", "[ \"\" ]");
        m("(a|b|)+", "ab", "[ \"\" ]");
        m("(a*){1,3}", "aa", "[ \"\" ]");
        m("(a*)?", "aa", "[ \"aa\" ]");
        m("((a*))*", "aa", "[ \"\" \"\" ]");
        m("(a*)*(b)", "aab", "[ \"\" \"b\" ]");
        m("(a*)*a", "aa", "[ \"\" ]");
        m("(a|b)*", "ab", "[ \"b\" ]");
        m("(a|ab)(c|bcd)(d*)", "abcd", "[ \"a\" \"bcd\" \"\" ]");
        m("^a|b$", "b", "[ ]");
        m("a^b", "ab", "null");
        m(".", "\n", "[ ]");
        m("[^a]", "\n", "[ ]");
        m("^.*X=\"([a-z]+)\".*$", "a\nX=\"sim\"\nb", "[ \"sim\" ]");
    }

    #[test]
    fn match_posix_syntax() {
        m(
            "[[:space:]]+([^[:space:]]+)[[:space:]]+",
            "  foo   ",
            "[ \"foo\" ]",
        );
        m("[[:space:]]+([[:upper:]]+)[[:space:]]+", "  foo   ", "null");
        m("[]a]+", "]a", "[ ]");
        m("[^]a]", "b", "[ ]");
        m("[a\\]+", "a\\", "[ ]");
        m("[a-]", "-", "[ ]");
        m("[%--]", "-", "[ ]");
        m("[[.a.]]", "a", "[ ]");
        m("[[=a=]]", "a", "[ ]");
        m("[[:w:]]", "_", "[ ]");
        m("[[:alnum:]+_?=-][[:alnum:]+._?=-]*", "glibc-2.40-66", "[ ]");
        m("[0-9.]*([a-z]*)", "2025.1.1", "[ \"\" ]");
        m("[a-zA-Z_][a-zA-Z0-9_'-]*", "pm.max_children", "null");
        m("[&&]", "&", "[ ]");
        m("[~-~]", "~", "[ ]");
        m("\\.", ".", "[ ]");
        m("\\(\\)\\*\\+\\?\\{\\|\\^\\$\\[\\\\", "()*+?{|^$[\\", "[ ]");
        m("a}", "a}", "[ ]");
        m("]", "]", "[ ]");
        m("a**", "aa", "[ ]");
        m("a+?", "aa", "[ ]");
        m("(a+?)", "aa", "[ \"aa\" ]");
        m("x{1}{2}", "xx", "[ ]");
        m("a{1,2}{3}", "aaa", "[ ]");
        m("a{2,}", "aaaa", "[ ]");
        m("#", "#", "[ ]");
        m(" ", " ", "[ ]");
        // Bytes, not characters: `+` repeats the last byte of `é`.
        m("é+", "éé", "null");
        m("é+", "é", "[ ]");
        m("[é]+", "éé", "[ ]");
    }

    #[test]
    fn match_errors() {
        for bad in [
            "(.*",
            "\\d",
            "a\\n",
            "\\/",
            "\\-",
            "\\]",
            "\\}",
            "a{,2}",
            "a{",
            "a{1",
            "*a",
            "(*a)",
            "a|*b",
            "a)",
            "[z-a]",
            "[[:foo:]]",
            "[[:word:]]",
            "a\\",
            "a{2,1}",
            "[a",
            "[]",
            "[[:alpha:]",
            "[a-c-e]",
            "[[.-.]]",
            "[[...]]",
            "[[:alpha:]-z]",
        ] {
            err(
                &format!("builtins.match {} \"\"", nix_str(bad)),
                &format!("invalid regular expression '{bad}'"),
            );
        }
        err(
            "builtins.match \"a{1000}{1000}\" \"\"",
            "memory limit exceeded by regular expression 'a{1000}{1000}'",
        );
        err(
            "builtins.match 1 { }",
            "expected a string but found an integer: 1",
        );
        err(
            "builtins.match \"foo\" { }",
            "expected a string but found a set: { }",
        );
    }

    #[test]
    fn split() {
        sp("foobar", "foobar", "[ \"\" [ ] \"\" ]");
        sp("fo+", "f", "[ \"f\" ]");
        sp("fo{1,2}", "fooo", "[ \"\" [ ] \"o\" ]");
        sp("(f)(o*)", "f", "[ \"\" [ \"f\" \"\" ] \"\" ]");
        sp(
            "(o+)",
            "oooofoooo",
            "[ \"\" [ \"oooo\" ] \"f\" [ \"oooo\" ] \"\" ]",
        );
        sp(
            "(b)",
            "foobarbaz",
            "[ \"foo\" [ \"b\" ] \"ar\" [ \"b\" ] \"az\" ]",
        );
        sp(
            "(a)|(c)",
            "abc",
            "[ \"\" [ \"a\" null ] \"b\" [ null \"c\" ] \"\" ]",
        );
        sp(
            "([[:upper:]]+)",
            "  FOO   ",
            "[ \"  \" [ \"FOO\" ] \"   \" ]",
        );
        sp("x*", "ab", "[ \"\" [ ] \"a\" [ ] \"b\" [ ] \"\" ]");
        sp("", "ab", "[ \"\" [ ] \"a\" [ ] \"b\" [ ] \"\" ]");
        sp("a*", "ab", "[ \"\" [ ] \"\" [ ] \"b\" [ ] \"\" ]");
        sp(
            "a*",
            "baab",
            "[ \"\" [ ] \"b\" [ ] \"\" [ ] \"b\" [ ] \"\" ]",
        );
        // POSIX: the longest match at the leftmost position.
        sp("a|ab", "abc", "[ \"\" [ ] \"c\" ]");
        sp("(a|ab)(c|bcd)?", "abcd", "[ \"\" [ \"a\" \"bcd\" ] \"\" ]");
        sp("b$", "bb", "[ \"b\" [ ] \"\" ]");
        sp("(b|bb$)", "bbb", "[ \"\" [ \"b\" ] \"\" [ \"bb\" ] \"\" ]");
        sp("^a", "aa", "[ \"\" [ ] \"a\" ]");
        sp("x", "", "[ \"\" ]");
        sp(
            "(a*)*",
            "aab",
            "[ \"\" [ \"\" ] \"\" [ \"\" ] \"b\" [ \"\" ] \"\" ]",
        );
        err(
            "builtins.split \"f(o*o\" \"1foo2\"",
            "invalid regular expression 'f(o*o'",
        );
        err(
            "builtins.split 1 { }",
            "expected a string but found an integer: 1",
        );
        err(
            "builtins.split \"foo\" { }",
            "expected a string but found a set: { }",
        );
    }
}
