//! ANSI colours for values and source tokens; all empty when colour is off.

/// The colours in use.
#[derive(Clone, Copy)]
pub struct Style {
    pub number: &'static str,
    pub string: &'static str,
    pub path: &'static str,
    pub function: &'static str,
    pub keyword: &'static str,
    pub comment: &'static str,
    pub error: &'static str,
    pub special: &'static str,
    pub reset: &'static str,
}

impl Style {
    /// Colours when `color`, otherwise nothing.
    pub fn new(color: bool) -> Style {
        if color {
            Style {
                number: "\x1b[36m",
                string: "\x1b[35m",
                path: "\x1b[32m",
                function: "\x1b[34m",
                keyword: "\x1b[33m",
                comment: "\x1b[90m",
                error: "\x1b[31m",
                special: "\x1b[32m",
                reset: "\x1b[0m",
            }
        } else {
            Style {
                number: "",
                string: "",
                path: "",
                function: "",
                keyword: "",
                comment: "",
                error: "",
                special: "",
                reset: "",
            }
        }
    }
}
