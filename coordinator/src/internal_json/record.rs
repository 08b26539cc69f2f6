//! The records of Nix's `--log-format internal-json` as types: one line `@nix {...}`
//! each, parsed tolerantly (unknown activity and result numbers are kept, unknown keys
//! ignored) and written with sorted keys as CppNix writes them.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The prefix of every record line.
pub const PREFIX: &str = "@nix ";

/// One field of a `start` or `result` record: Nix's fields are numbers or strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// A number.
    Int(u64),
    /// A string.
    Str(String),
}

impl Field {
    /// The number, if this is one.
    pub fn as_int(&self) -> Option<u64> {
        match self {
            Field::Int(n) => Some(*n),
            Field::Str(_) => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(s) => Some(s),
            Field::Int(_) => None,
        }
    }
}

impl From<&str> for Field {
    fn from(s: &str) -> Field {
        Field::Str(s.to_string())
    }
}

impl From<String> for Field {
    fn from(s: String) -> Field {
        Field::Str(s)
    }
}

impl From<u64> for Field {
    fn from(n: u64) -> Field {
        Field::Int(n)
    }
}

/// Declares a Nix numbering: an enum with an `Other(u64)` variant for numbers this
/// version does not know, and the conversions both ways.
macro_rules! numbered {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A number this version does not know (newer Nix may add some).
            Other(u64),
        }

        impl $name {
            /// Nix's number for it.
            pub fn code(self) -> u64 {
                match self {
                    $($name::$variant => $code,)*
                    $name::Other(n) => n,
                }
            }

            /// The type Nix numbers `code`; unknown numbers are `Other`, never an error.
            pub fn from_code(code: u64) -> $name {
                match code {
                    $($code => $name::$variant,)*
                    n => $name::Other(n),
                }
            }
        }
    };
}

numbered! {
    /// Nix's activity types by number.
    ActivityType {
        /// Anything else (`querying info about missing paths`, ...).
        Unknown = 0,
        /// Copying one store path: fields `[storePath, srcUri, dstUri]`.
        CopyPath = 100,
        /// A download: fields `[uri]`, progress in bytes.
        FileTransfer = 101,
        /// The whole realisation (carries `SetExpected` results).
        Realise = 102,
        /// All path copies (progress in paths).
        CopyPaths = 103,
        /// All builds: progress `[done, expected, running, failed]`.
        Builds = 104,
        /// One build: fields `[drvPath, machine, curRound, nrRounds]`.
        Build = 105,
        /// Store optimisation.
        OptimiseStore = 106,
        /// Path verification.
        VerifyPaths = 107,
        /// One substitution: fields `[storePath, substituterUri]`.
        Substitute = 108,
        /// A path info query: fields `[storePath, uri]`.
        QueryPathInfo = 109,
        /// The post-build hook: fields `[drvPath]`.
        PostBuildHook = 110,
        /// A build waiting for a lock or a slot.
        BuildWaiting = 111,
    }
}

numbered! {
    /// Nix's result types by number.
    ResultType {
        /// A file hard-linked by optimisation: `[bytes, blocks]`.
        FileLinked = 100,
        /// A line of a build's log: `[line]`.
        BuildLogLine = 101,
        /// An untrusted path: `[path]`.
        UntrustedPath = 102,
        /// A corrupted path: `[path]`.
        CorruptedPath = 103,
        /// A build entered a phase: `[phase]`.
        SetPhase = 104,
        /// Progress: `[done, expected, running, failed]`.
        Progress = 105,
        /// How many of an activity type are expected: `[activityType, n]`.
        SetExpected = 106,
        /// A line of the post-build hook's log: `[line]`.
        PostBuildLogLine = 107,
    }
}

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogRecord {
    /// An activity started.
    Start {
        /// Unique in the writing process.
        id: u64,
        /// Its verbosity level (0 error ... 7 vomit).
        level: u8,
        /// What it is.
        activity: ActivityType,
        /// Its description (often empty).
        text: String,
        /// Its fields (absent in the JSON when empty).
        fields: Vec<Field>,
        /// The activity it belongs to, 0 for none (Nix 2.8 does not write it).
        parent: u64,
    },
    /// An activity stopped.
    Stop {
        /// The activity.
        id: u64,
    },
    /// An activity reported something.
    Result {
        /// The activity.
        id: u64,
        /// What kind of result.
        result: ResultType,
        /// Its fields.
        fields: Vec<Field>,
    },
    /// A message (errors, warnings, notices).
    Msg {
        /// Its verbosity level: 0 error, 1 warn, 2 notice, 3 info, 4 talkative, 5 chatty,
        /// 6 debug, 7 vomit.
        level: u8,
        /// The text (errors start with `error: `).
        msg: String,
    },
}

/// One line of a stream: a record (`@nix {...}`) or anything else, shown as log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A record.
    Record(LogRecord),
    /// A line without the `@nix ` prefix.
    Plain(String),
}

/// Why a line with the `@nix ` prefix is not a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InternalJsonError {
    /// Not a JSON object.
    #[error("not a JSON object: {0}")]
    Json(String),
    /// A key the action needs is missing or has the wrong type.
    #[error("'{action}' record: key '{key}' is missing or not {expected}")]
    BadKey {
        /// The action.
        action: String,
        /// The key.
        key: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A field is neither a non-negative integer nor a string.
    #[error("'{action}' record: field {index} is neither a non-negative integer nor a string")]
    BadField {
        /// The action.
        action: String,
        /// The field's position.
        index: usize,
    },
    /// An action this version does not know (the line can be skipped).
    #[error("unknown action '{0}'")]
    UnknownAction(String),
}

/// Parses one line (without its newline; a trailing `\r` is ignored). Lines without the
/// `@nix ` prefix are [`Line::Plain`]; a malformed record is an error, never a panic.
pub fn parse_line(line: &str) -> Result<Line, InternalJsonError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let Some(json) = line.strip_prefix(PREFIX) else {
        return Ok(Line::Plain(line.to_string()));
    };
    let object = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(o)) => o,
        Ok(other) => return Err(InternalJsonError::Json(format!("found {other}"))),
        Err(e) => return Err(InternalJsonError::Json(e.to_string())),
    };
    parse_record(&object).map(Line::Record)
}

/// Reads the keys of one record's object.
struct Keys<'a> {
    object: &'a Map<String, Value>,
    action: &'a str,
}

impl Keys<'_> {
    fn bad(&self, key: &'static str, expected: &'static str) -> InternalJsonError {
        InternalJsonError::BadKey {
            action: self.action.to_string(),
            key,
            expected,
        }
    }

    fn int(&self, key: &'static str) -> Result<u64, InternalJsonError> {
        self.object
            .get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.bad(key, "a non-negative integer"))
    }

    /// An optional integer (absent or null is `default`).
    fn int_or(&self, key: &'static str, default: u64) -> Result<u64, InternalJsonError> {
        match self.object.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(_) => self.int(key),
        }
    }

    fn level(&self) -> Result<u8, InternalJsonError> {
        u8::try_from(self.int("level")?).map_err(|_| self.bad("level", "a level (0 to 255)"))
    }

    /// An optional string (absent or null is empty).
    fn text(&self, key: &'static str) -> Result<String, InternalJsonError> {
        match self.object.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    /// The `fields` array (absent or null is empty).
    fn fields(&self) -> Result<Vec<Field>, InternalJsonError> {
        let items = match self.object.get("fields") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(self.bad("fields", "an array")),
        };
        items
            .iter()
            .enumerate()
            .map(|(index, v)| {
                match v {
                    Value::String(s) => Some(Field::Str(s.clone())),
                    Value::Number(n) => n.as_u64().map(Field::Int),
                    _ => None,
                }
                .ok_or_else(|| InternalJsonError::BadField {
                    action: self.action.to_string(),
                    index,
                })
            })
            .collect()
    }
}

fn parse_record(object: &Map<String, Value>) -> Result<LogRecord, InternalJsonError> {
    let action = object
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| InternalJsonError::BadKey {
            action: String::new(),
            key: "action",
            expected: "a string",
        })?;
    let keys = Keys { object, action };
    Ok(match action {
        "start" => LogRecord::Start {
            id: keys.int("id")?,
            level: keys.level()?,
            activity: ActivityType::from_code(keys.int("type")?),
            text: keys.text("text")?,
            fields: keys.fields()?,
            parent: keys.int_or("parent", 0)?,
        },
        "stop" => LogRecord::Stop {
            id: keys.int("id")?,
        },
        "result" => LogRecord::Result {
            id: keys.int("id")?,
            result: ResultType::from_code(keys.int("type")?),
            fields: keys.fields()?,
        },
        "msg" => LogRecord::Msg {
            level: keys.level()?,
            msg: keys.text("msg")?,
        },
        other => return Err(InternalJsonError::UnknownAction(other.to_string())),
    })
}

/// Appends `s` as a JSON string.
fn push_str(out: &mut String, s: &str) {
    // Serialising a string cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

fn push_fields(out: &mut String, fields: &[Field]) {
    out.push('[');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match f {
            Field::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Field::Str(s) => push_str(out, s),
        }
    }
    out.push(']');
}

impl LogRecord {
    /// The record as a line, `@nix {...}` without a newline, keys in sorted order as
    /// CppNix writes them (`fields` left out when empty, as Nix does).
    pub fn to_line(&self) -> String {
        let mut out = String::from(PREFIX);
        match self {
            LogRecord::Start {
                id,
                level,
                activity,
                text,
                fields,
                parent,
            } => {
                out.push_str("{\"action\":\"start\",");
                if !fields.is_empty() {
                    out.push_str("\"fields\":");
                    push_fields(&mut out, fields);
                    out.push(',');
                }
                let _ = write!(out, "\"id\":{id},\"level\":{level},\"parent\":{parent},");
                out.push_str("\"text\":");
                push_str(&mut out, text);
                let _ = write!(out, ",\"type\":{}}}", activity.code());
            }
            LogRecord::Stop { id } => {
                let _ = write!(out, "{{\"action\":\"stop\",\"id\":{id}}}");
            }
            LogRecord::Result { id, result, fields } => {
                out.push_str("{\"action\":\"result\",\"fields\":");
                push_fields(&mut out, fields);
                let _ = write!(out, ",\"id\":{id},\"type\":{}}}", result.code());
            }
            LogRecord::Msg { level, msg } => {
                let _ = write!(out, "{{\"action\":\"msg\",\"level\":{level},\"msg\":");
                push_str(&mut out, msg);
                out.push('}');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> LogRecord {
        match parse_line(line) {
            Ok(Line::Record(r)) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn nix_records_parse() {
        // As Nix 2.8 writes them (no `parent`, no `fields` when there are none).
        let start = record(
            r#"@nix {"action":"start","fields":["/nix/store/x-a.drv","",1,1],"id":7,"level":3,"text":"building '/nix/store/x-a.drv'","type":105}"#,
        );
        assert_eq!(
            start,
            LogRecord::Start {
                id: 7,
                level: 3,
                activity: ActivityType::Build,
                text: "building '/nix/store/x-a.drv'".into(),
                fields: vec!["/nix/store/x-a.drv".into(), "".into(), 1.into(), 1.into()],
                parent: 0,
            }
        );
        assert_eq!(
            record(r#"@nix {"action":"start","id":73675868995585,"level":0,"text":"","type":102}"#),
            LogRecord::Start {
                id: 73675868995585,
                level: 0,
                activity: ActivityType::Realise,
                text: String::new(),
                fields: vec![],
                parent: 0,
            }
        );
        assert_eq!(
            record(r#"@nix {"action":"result","fields":[1,5,0,0],"id":9,"type":105}"#),
            LogRecord::Result {
                id: 9,
                result: ResultType::Progress,
                fields: vec![1.into(), 5.into(), 0.into(), 0.into()],
            }
        );
        assert_eq!(
            record(r#"@nix {"action":"stop","id":9}"#),
            LogRecord::Stop { id: 9 }
        );
        // An error carries position keys, which are ignored.
        assert_eq!(
            record(
                r#"@nix {"action":"msg","column":null,"file":null,"level":0,"line":null,"msg":"\u001b[31;1merror:\u001b[0m x","raw_msg":"x"}"#
            ),
            LogRecord::Msg {
                level: 0,
                msg: "\u{1b}[31;1merror:\u{1b}[0m x".into()
            }
        );
    }

    #[test]
    fn round_trips() {
        let records = [
            LogRecord::Start {
                id: 1 << 40,
                level: 3,
                activity: ActivityType::Build,
                text: "building 'a \"quoted\" ✓'".into(),
                fields: vec!["a".into(), "".into(), 1.into(), 1.into()],
                parent: 5,
            },
            LogRecord::Start {
                id: 2,
                level: 0,
                activity: ActivityType::Other(4242),
                text: String::new(),
                fields: vec![],
                parent: 0,
            },
            LogRecord::Stop { id: u64::MAX },
            LogRecord::Result {
                id: 3,
                result: ResultType::BuildLogLine,
                fields: vec!["tab\tand \u{1b}[1mescape\u{1b}[0m\\".into()],
            },
            LogRecord::Result {
                id: 3,
                result: ResultType::Other(999),
                fields: vec![],
            },
            LogRecord::Msg {
                level: 0,
                msg: "error: two\nlines".into(),
            },
        ];
        for r in records {
            let line = r.to_line();
            assert!(line.starts_with("@nix {") && !line.contains('\n'), "{line}");
            assert_eq!(parse_line(&line), Ok(Line::Record(r)), "{line}");
        }
    }

    #[test]
    fn keys_are_written_sorted_as_nix_does() {
        let start = LogRecord::Start {
            id: 1,
            level: 3,
            activity: ActivityType::Build,
            text: "t".into(),
            fields: vec!["d".into(), 1.into()],
            parent: 0,
        };
        assert_eq!(
            start.to_line(),
            r#"@nix {"action":"start","fields":["d",1],"id":1,"level":3,"parent":0,"text":"t","type":105}"#
        );
        let no_fields = LogRecord::Start {
            id: 2,
            level: 0,
            activity: ActivityType::Builds,
            text: String::new(),
            fields: vec![],
            parent: 0,
        };
        assert_eq!(
            no_fields.to_line(),
            r#"@nix {"action":"start","id":2,"level":0,"parent":0,"text":"","type":104}"#
        );
        assert_eq!(
            LogRecord::Msg {
                level: 3,
                msg: "m".into()
            }
            .to_line(),
            r#"@nix {"action":"msg","level":3,"msg":"m"}"#
        );
    }

    #[test]
    fn unknown_numbers_are_kept() {
        for code in [0, 100, 105, 111, 112, 113, 7, u64::MAX] {
            assert_eq!(ActivityType::from_code(code).code(), code);
            assert_eq!(ResultType::from_code(code).code(), code);
        }
        assert_eq!(ActivityType::from_code(112), ActivityType::Other(112));
        assert_eq!(ResultType::from_code(108), ResultType::Other(108));
        assert_eq!(
            record(r#"@nix {"action":"result","fields":["ok"],"id":1,"type":108,"new":{"x":1}}"#),
            LogRecord::Result {
                id: 1,
                result: ResultType::Other(108),
                fields: vec!["ok".into()]
            }
        );
    }

    #[test]
    fn plain_lines_and_garbage() {
        assert_eq!(parse_line("hello"), Ok(Line::Plain("hello".into())));
        assert_eq!(parse_line(""), Ok(Line::Plain(String::new())));
        // The prefix needs its space.
        assert_eq!(parse_line("@nix{}"), Ok(Line::Plain("@nix{}".into())));
        assert_eq!(
            parse_line("@nix {\"action\":\"stop\",\"id\":1}\r"),
            Ok(Line::Record(LogRecord::Stop { id: 1 }))
        );
        for bad in [
            "@nix ",
            "@nix {",
            "@nix [1,2]",
            "@nix \"stop\"",
            "@nix {}",
            r#"@nix {"action":5}"#,
            r#"@nix {"action":"stop"}"#,
            r#"@nix {"action":"stop","id":-1}"#,
            r#"@nix {"action":"stop","id":1.5}"#,
            r#"@nix {"action":"start","id":1,"level":300,"type":105}"#,
            r#"@nix {"action":"start","id":1,"level":3,"type":105,"fields":[null]}"#,
            r#"@nix {"action":"result","id":1,"type":105,"fields":[-3]}"#,
            r#"@nix {"action":"result","id":1,"type":105,"fields":{"a":1}}"#,
            r#"@nix {"action":"msg","level":0,"msg":3}"#,
            r#"@nix {"action":"setPhase","phase":"buildPhase"}"#,
            "@nix \u{0}\u{ff}garbage",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}: {:?}", parse_line(bad));
        }
        assert_eq!(
            parse_line(r#"@nix {"action":"setPhase","phase":"buildPhase"}"#),
            Err(InternalJsonError::UnknownAction("setPhase".into()))
        );
    }
}
