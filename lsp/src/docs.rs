//! Documentation shown for names: builtins (from the evaluator's builtin documentation) and
//! bindings of the file (their kind and the doc comment before them).

use crate::analysis::Definition;

/// Markdown for a global name.
pub fn global_markdown(name: &str) -> String {
    format!("builtin `{name}`")
}

/// Markdown for a binding of the file.
pub fn binding_markdown(_text: &str, def: &Definition) -> String {
    format!("{} `{}`", def.kind.describe(), def.name)
}

/// Markdown for an attribute of an evaluated set: where it is defined.
pub fn attribute_markdown(name: &str, pos: &crate::evaluate::FileRange) -> String {
    format!(
        "`{name}`, defined at {}:{}",
        pos.path.display(),
        pos.start.0 + 1
    )
}
