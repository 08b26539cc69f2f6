//! Tab completion by context: `:commands`; file paths after `:l`/`:lf` and wherever a path
//! is being typed; attribute names after `expr.` (the prefix is evaluated within a time
//! budget, quietly, errors ignored); otherwise variables in scope, builtins and keywords.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tvix_eval::value::print::{escape_string, is_plain_identifier};
use tvix_eval::Value;

use crate::command::COMMANDS;
use crate::scope::is_numbered_result;
use crate::session::Session;

/// How long evaluating the prefix of an attribute path may take.
pub const EVAL_BUDGET: Duration = Duration::from_millis(500);

const KEYWORDS: &[&str] = &[
    "assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with",
];

/// One completion: what is listed, and what replaces the text being completed.
#[derive(Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Shown in the list (a file's name without its directory).
    pub display: String,
    /// Replaces `line[start..pos]`.
    pub replacement: String,
}

impl Candidate {
    fn plain(text: String) -> Candidate {
        Candidate {
            display: text.clone(),
            replacement: text,
        }
    }
}

/// Where the completed text starts and the candidates, sorted.
pub fn complete(s: &mut Session, line: &str, pos: usize) -> (usize, Vec<Candidate>) {
    let before = &line[..pos];
    let lead = before.len() - before.trim_start().len();
    let trimmed = &before[lead..];
    if trimmed.starts_with(':') {
        match trimmed.find(char::is_whitespace) {
            None => {
                let mut names: Vec<String> = COMMANDS
                    .iter()
                    .flat_map(|c| c.names.iter())
                    .filter(|n| n.starts_with(trimmed))
                    .map(|n| n.to_string())
                    .collect();
                names.sort();
                return (lead, names.into_iter().map(Candidate::plain).collect());
            }
            Some(end) => {
                let cmd = &trimmed[..end];
                if matches!(cmd, ":l" | ":load" | ":lf" | ":load-flake") {
                    let arg_start =
                        lead + end + (trimmed[end..].len() - trimmed[end..].trim_start().len());
                    return complete_path(before, arg_start);
                }
            }
        }
    }
    let start = word_start(before);
    let word = &before[start..];
    if ["./", "../", "/", "~/"].iter().any(|p| word.starts_with(p)) {
        return complete_path(before, start);
    }
    match last_unquoted_dot(word) {
        Some(dot) => {
            let (prefix, partial) = (&word[..dot], &word[dot + 1..]);
            let partial = partial.strip_prefix('"').unwrap_or(partial);
            let names = attribute_names(s, prefix, partial);
            (
                start + dot + 1,
                names.into_iter().map(Candidate::plain).collect(),
            )
        }
        None => (
            start,
            variable_names(s, word)
                .into_iter()
                .map(Candidate::plain)
                .collect(),
        ),
    }
}

/// The start of the word under the cursor: identifiers, dots and quoted attribute names.
fn word_start(before: &str) -> usize {
    let mut start = 0;
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        if in_quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quote = false,
                _ => {}
            }
        } else if c == '"' {
            in_quote = true;
        } else if !(c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-' | '.' | '/' | '~')) {
            start = i + c.len_utf8();
        }
    }
    start
}

fn last_unquoted_dot(word: &str) -> Option<usize> {
    let mut in_quote = false;
    let mut last = None;
    for (i, c) in word.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '.' if !in_quote => last = Some(i),
            _ => {}
        }
    }
    last
}

fn variable_names(s: &Session, partial: &str) -> Vec<String> {
    let mut names: Vec<String> = s
        .scope_names()
        .chain(s.ev.global_names())
        .map(|n| n.as_str())
        .filter(|n| !is_numbered_result(n))
        .filter(|n| partial.starts_with("__") || !n.starts_with("__"))
        .chain(KEYWORDS.iter().copied())
        .filter(|n| n.starts_with(partial))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The attributes of `prefix` (evaluated quietly) that start with `partial`, quoted where a
/// bare name would not parse.
fn attribute_names(s: &mut Session, prefix: &str, partial: &str) -> Vec<String> {
    if prefix.is_empty() {
        return Vec::new();
    }
    let Some(Value::Attrs(a)) = s.eval_quietly(prefix, EVAL_BUDGET) else {
        return Vec::new();
    };
    a.iter()
        .map(|e| e.name.as_str())
        .filter(|n| n.starts_with(partial))
        .map(|n| {
            if is_plain_identifier(n) {
                n.to_string()
            } else {
                let mut q = String::new();
                escape_string(n.as_bytes(), &mut q);
                q
            }
        })
        .collect()
}

/// File names for the path in `before[start..]`; directories end with `/`.
fn complete_path(before: &str, start: usize) -> (usize, Vec<Candidate>) {
    let typed = &before[start..];
    let (dir_part, name_part) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let dir: PathBuf = if let Some(rest) = dir_part.strip_prefix("~/") {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(rest))
            .unwrap_or_default()
    } else if dir_part.is_empty() {
        PathBuf::from(".")
    } else {
        PathBuf::from(dir_part)
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return (start, Vec::new());
    };
    let mut out: Vec<Candidate> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(name_part)
                || (name.starts_with('.') && !name_part.starts_with('.'))
            {
                return None;
            }
            let slash = if Path::new(&dir).join(&name).is_dir() {
                "/"
            } else {
                ""
            };
            Some(Candidate {
                display: format!("{name}{slash}"),
                replacement: format!("{dir_part}{name}{slash}"),
            })
        })
        .collect();
    out.sort_by(|a, b| a.replacement.cmp(&b.replacement));
    (start, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvix_eval::io::StdIO;
    use tvix_eval::{EvalConfig, Evaluator};

    fn session() -> Session {
        Session::new(
            Box::new(|| Evaluator::new(Box::new(StdIO::new()), EvalConfig::default())),
            Vec::new(),
            false,
            false,
        )
    }

    fn replacements(s: &mut Session, line: &str) -> (usize, Vec<String>) {
        let (start, c) = complete(s, line, line.len());
        (start, c.into_iter().map(|c| c.replacement).collect())
    }

    #[test]
    fn variables_attributes_and_quoting() {
        let mut s = session();
        s.handle("pkgs = { hello = 1; \"hello world\" = 2; help = 3; other = 4; }")
            .unwrap();
        assert_eq!(replacements(&mut s, "map (x: pk"), (8, vec!["pkgs".into()]));
        assert_eq!(
            replacements(&mut s, "pkgs.hel"),
            (
                5,
                vec!["hello".into(), "\"hello world\"".into(), "help".into()]
            )
        );
        assert_eq!(
            replacements(&mut s, "pkgs.\"hello w"),
            (5, vec!["\"hello world\"".into()])
        );
        assert_eq!(replacements(&mut s, "builtins.attrN").1, vec!["attrNames"]);
        assert_eq!(replacements(&mut s, ":rel"), (0, vec![":reload".into()]));
        assert!(replacements(&mut s, "i").1.contains(&"import".to_string()));
        assert!(replacements(&mut s, "i").1.contains(&"inherit".to_string()));
    }

    #[test]
    fn slow_or_failing_prefixes_complete_nothing_within_the_budget() {
        let mut s = session();
        s.handle(
            "slow = builtins.foldl' (a: b: builtins.foldl' (x: y: x + y) a (builtins.genList (i: i) 100000)) 0 (builtins.genList (i: i) 100000)",
        )
        .unwrap();
        s.handle("bad = throw \"no\"").unwrap();
        let t = std::time::Instant::now();
        assert!(replacements(&mut s, "slow.x").1.is_empty());
        assert!(t.elapsed() < EVAL_BUDGET * 4, "{:?}", t.elapsed());
        assert!(replacements(&mut s, "bad.x").1.is_empty());
        assert!(replacements(&mut s, "nothing.x").1.is_empty());
        // The session is unharmed: the interrupted thunk can still be evaluated.
        s.handle("small = builtins.foldl' (x: y: x + y) 0 [ 1 2 ]")
            .unwrap();
        assert_eq!(
            s.handle("small"),
            Ok(crate::session::Outcome::Value("3".into()))
        );
    }

    #[test]
    fn words_and_dots() {
        assert_eq!(word_start("map (x: builtins.at"), 8);
        assert_eq!(word_start("a.\"b c\".d"), 0);
        assert_eq!(last_unquoted_dot("a.\"b.c\".d"), Some(7));
        assert_eq!(last_unquoted_dot("abc"), None);
    }
}
