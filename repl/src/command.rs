//! What a line of input is: a `:command`, a binding (`x = expr`, `inherit ...`), or an
//! expression; and the table of commands with their names and help.

/// A REPL command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Add,
    Load,
    LoadFlake,
    Reload,
    Edit,
    Type,
    Print,
    Doc,
    TraceEnable,
    Quit,
    Env,
    Set,
    LastLoaded,
    /// `:b`: build a derivation and print its outputs.
    Build,
    /// `:bl`: build and link the outputs as `repl-result-OUTPUT`.
    BuildLink,
    /// `:i`: build and install into the tvix profile.
    Install,
    /// `:u`: build and start a shell with the outputs on `PATH`.
    UseShell,
    /// `:sh` (`:s` in Nix 2.8): build the inputs and start a shell with the build's
    /// environment.
    DevShell,
    /// `:log`: show the build log.
    Log,
}

impl Command {
    /// Whether the command builds (or reads build logs), so needs a store and a builder.
    pub fn builds(self) -> bool {
        matches!(
            self,
            Command::Build
                | Command::BuildLink
                | Command::Install
                | Command::UseShell
                | Command::DevShell
                | Command::Log
        )
    }
}

/// One line of `:?`, and the names that invoke it.
pub struct CommandSpec {
    /// Short name first, then the long one (if any).
    pub names: &'static [&'static str],
    /// The argument, as shown in the help.
    pub arg: &'static str,
    /// What it does.
    pub help: &'static str,
    /// The command.
    pub command: Command,
}

macro_rules! spec {
    ([$($n:literal),+], $arg:literal, $help:literal, $c:ident) => {
        CommandSpec { names: &[$($n),+], arg: $arg, help: $help, command: Command::$c }
    };
}

/// Every command, in the order `:?` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    spec!([":?", ":help"], "", "Show this help", Help),
    spec!(
        [":a", ":add"],
        "<expr>",
        "Add the attributes of the resulting set to the scope",
        Add
    ),
    spec!(
        [":l", ":load"],
        "<path>",
        "Load a Nix file (or <lookup path>) and add its attributes to the scope",
        Load
    ),
    spec!(
        [":lf", ":load-flake"],
        "<dir>",
        "Load a local flake's outputs and add them to the scope",
        LoadFlake
    ),
    spec!(
        [":r", ":reload"],
        "",
        "Reload all loaded files and flakes (bindings are dropped)",
        Reload
    ),
    spec!(
        [":e", ":edit"],
        "<expr>",
        "Open the function or package in $EDITOR at its definition",
        Edit
    ),
    spec!(
        [":t", ":type"],
        "<expr>",
        "Describe the type of the result",
        Type
    ),
    spec!(
        [":p", ":print"],
        "<expr>",
        "Evaluate and print the result deeply (strict)",
        Print
    ),
    spec!(
        [":doc"],
        "<expr>",
        "Show the documentation of a builtin or a documented function",
        Doc
    ),
    spec!(
        [":te", ":trace-enable", ":st"],
        "[bool]",
        "Enable, disable or toggle showing error traces",
        TraceEnable
    ),
    spec!(
        [":env"],
        "",
        "Show the variables the REPL added to the scope",
        Env
    ),
    spec!(
        [":set"],
        "[depth|width N]",
        "Show or set how deep and how wide results are printed",
        Set
    ),
    spec!(
        [":ll", ":last-loaded"],
        "",
        "Show the variables added by the last :l, :lf or :a",
        LastLoaded
    ),
    spec!([":q", ":quit"], "", "Exit the REPL", Quit),
    spec!([":b"], "<expr>", "Build a derivation", Build),
    spec!(
        [":bl"],
        "<expr>",
        "Build a derivation, linking its outputs as ./repl-result-OUTPUT",
        BuildLink
    ),
    spec!(
        [":i"],
        "<expr>",
        "Build a derivation, then install it into the tvix profile",
        Install
    ),
    spec!(
        [":u"],
        "<expr>",
        "Build a derivation, then start a shell with its outputs on PATH",
        UseShell
    ),
    spec!(
        [":sh", ":s"],
        "<expr>",
        "Build the inputs of a derivation, then start a shell with its build environment",
        DevShell
    ),
    spec!(
        [":log"],
        "<expr>",
        "Show the build log of a derivation",
        Log
    ),
];

/// A line (or several, for multi-line input) classified.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Only whitespace.
    Empty,
    /// `:name rest`.
    Command(Command, &'static str, &'a str),
    /// `:name` that is not a command.
    UnknownCommand(&'a str),
    /// `name = expr`.
    Binding(&'a str, &'a str),
    /// `inherit ...;` (the whole text).
    Inherit(&'a str),
    /// Anything else.
    Expr(&'a str),
}

/// The command called `name` (with its leading colon).
pub fn lookup(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.names.contains(&name))
}

/// Classifies an input.
pub fn parse_input(text: &str) -> Input<'_> {
    let t = text.trim();
    if t.is_empty() {
        return Input::Empty;
    }
    if let Some(rest) = t.strip_prefix(':') {
        let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        let name = &t[..end + 1];
        let arg = rest[end..].trim();
        return match lookup(name) {
            Some(spec) => Input::Command(spec.command, spec.names[0], arg),
            None => Input::UnknownCommand(name),
        };
    }
    if t.starts_with("inherit") && t[7..].starts_with(|c: char| c.is_whitespace() || c == '(') {
        return Input::Inherit(t);
    }
    if let Some((name, rhs)) = split_binding(t) {
        return Input::Binding(name, rhs);
    }
    Input::Expr(t)
}

/// `name = rhs` where `name` is a Nix identifier and `=` is not the start of `==`. A trailing
/// `;` is allowed, as users type it out of habit.
fn split_binding(t: &str) -> Option<(&str, &str)> {
    let name_end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '\'' || c == '-'))
        .unwrap_or(t.len());
    let name = &t[..name_end];
    if name.is_empty() || !tvix_eval::value::print::is_plain_identifier(name) {
        return None;
    }
    let rest = t[name_end..].trim_start().strip_prefix('=')?;
    if rest.starts_with('=') {
        return None;
    }
    let rhs = rest.trim();
    let rhs = rhs.strip_suffix(';').map(str::trim_end).unwrap_or(rhs);
    Some((name, rhs))
}

/// The text of `:?`.
pub fn help_text() -> String {
    let mut out = String::from("The following commands are available:\n\n");
    out.push_str("  <expr>                    Evaluate and print expression\n");
    out.push_str("  <x> = <expr>              Bind expression to variable\n");
    out.push_str("  inherit [(<expr>)] <x>... Bind variables from the scope or a set\n");
    for c in COMMANDS {
        let usage = format!("{} {}", c.names.join(", "), c.arg);
        out.push_str(&format!("  {:<25} {}\n", usage.trim_end(), c.help));
    }
    out.push_str(
        "\n`_` is the last result; `_1`, `_2`, ... are the results in order.\n\
         Ctrl-C interrupts an evaluation, Ctrl-D exits.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_inputs() {
        assert_eq!(parse_input("  "), Input::Empty);
        assert_eq!(parse_input("x = 1 + 2"), Input::Binding("x", "1 + 2"));
        assert_eq!(parse_input("x' = 1;"), Input::Binding("x'", "1"));
        assert_eq!(parse_input("x == 1"), Input::Expr("x == 1"));
        assert_eq!(parse_input("if = 1"), Input::Expr("if = 1"));
        assert_eq!(
            parse_input("inherit (a) b"),
            Input::Inherit("inherit (a) b")
        );
        assert_eq!(parse_input("inheritance"), Input::Expr("inheritance"));
        assert_eq!(
            parse_input(":load  ./x.nix"),
            Input::Command(Command::Load, ":l", "./x.nix")
        );
        assert_eq!(parse_input(":?"), Input::Command(Command::Help, ":?", ""));
        assert_eq!(parse_input(":zz 1"), Input::UnknownCommand(":zz"));
        assert_eq!(
            parse_input(":b  pkgs.hello "),
            Input::Command(Command::Build, ":b", "pkgs.hello")
        );
        assert_eq!(
            parse_input(":s x"),
            Input::Command(Command::DevShell, ":sh", "x")
        );
        assert_eq!(
            parse_input(":bl"),
            Input::Command(Command::BuildLink, ":bl", "")
        );
        assert!(Command::Log.builds() && !Command::Print.builds());
    }

    #[test]
    fn every_name_is_unique() {
        let mut names: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|c| c.names.iter().copied())
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
