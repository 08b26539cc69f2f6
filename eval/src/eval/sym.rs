//! Names the evaluator itself looks up, interned once.

use std::sync::OnceLock;

use crate::symbol::Symbol;

macro_rules! symbols {
    ($($fn:ident => $text:literal),* $(,)?) => {
        struct Symbols { $($fn: Symbol),* }

        fn table() -> &'static Symbols {
            static TABLE: OnceLock<Symbols> = OnceLock::new();
            TABLE.get_or_init(|| Symbols { $($fn: Symbol::intern($text)),* })
        }

        $(
            #[doc = concat!("The symbol `", $text, "`.")]
            #[inline]
            pub fn $fn() -> Symbol { table().$fn }
        )*
    };
}

symbols! {
    type_ => "type",
    out_path => "outPath",
    functor => "__functor",
    to_string => "__toString",
    file => "file",
    line => "line",
    column => "column",
    name => "name",
    value => "value",
    path => "path",
    prefix => "prefix",
    drv_path => "drvPath",
    outputs => "outputs",
    out => "out",
    success => "success",
    key => "key",
    operator => "operator",
    start_set => "startSet",
    right => "right",
    wrong => "wrong",
    body => "body",
    ignore_nulls => "__ignoreNulls",
    structured_attrs => "__structuredAttrs",
    builder => "builder",
    system => "system",
    overrides => "__overrides",
}
