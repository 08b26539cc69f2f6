//! Nix strings: byte strings that carry a context (the store paths they refer to).

use std::collections::BTreeSet;
use std::fmt;

/// One element of a string's context, as Nix records them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContextElem {
    /// A plain store path (a source or a `.drv` used as a file).
    Plain(String),
    /// One output of a derivation: (drv path, output name).
    Output(String, String),
    /// The derivation and all its outputs (`drvPath` of a derivation).
    AllOutputs(String),
}

/// A string's context: a set of store-path references.
pub type Context = BTreeSet<ContextElem>;

/// A Nix string value. Content is bytes (Nix strings need not be UTF-8).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NixString {
    // Borrowed for strings made from interned names (`attrNames`, `mapAttrs`), which then
    // cost no copy.
    bytes: std::borrow::Cow<'static, [u8]>,
    context: Option<Box<Context>>,
}

impl NixString {
    /// A string without context.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        NixString {
            bytes: std::borrow::Cow::Owned(fit(bytes.into())),
            context: None,
        }
    }

    /// A string of static text (an interned name), without copying it.
    pub fn from_static(bytes: &'static [u8]) -> Self {
        NixString {
            bytes: std::borrow::Cow::Borrowed(bytes),
            context: None,
        }
    }

    /// A string with the given context (an empty context is stored as none).
    pub fn with_context(bytes: impl Into<Vec<u8>>, context: Context) -> Self {
        let context = if context.is_empty() {
            None
        } else {
            Some(Box::new(context))
        };
        NixString {
            bytes: std::borrow::Cow::Owned(fit(bytes.into())),
            context,
        }
    }

    /// The string's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The string as text, replacing invalid UTF-8 (for messages and paths).
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// The string's context, if it has one.
    pub fn context(&self) -> Option<&Context> {
        self.context.as_deref()
    }

    /// Whether the string carries any context.
    pub fn has_context(&self) -> bool {
        self.context.is_some()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// `bytes` without much unused capacity: strings live long, but shrinking every built string
/// to its exact size (a reallocation each) cost more time than the little memory it saved.
fn fit(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.capacity() - bytes.len() > 32 + bytes.len() / 4 {
        bytes.shrink_to_fit();
    }
    bytes
}

impl From<&str> for NixString {
    fn from(s: &str) -> Self {
        NixString::new(s.as_bytes())
    }
}
impl From<String> for NixString {
    fn from(s: String) -> Self {
        NixString::new(s.into_bytes())
    }
}
impl From<Vec<u8>> for NixString {
    fn from(s: Vec<u8>) -> Self {
        NixString::new(s)
    }
}

impl fmt::Debug for NixString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_str_lossy())
    }
}

/// Builds a string from pieces, merging their contexts.
#[derive(Default)]
pub struct StringBuilder {
    bytes: Vec<u8>,
    context: Context,
}

impl StringBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        StringBuilder {
            bytes: Vec::with_capacity(n),
            context: Context::new(),
        }
    }

    /// Appends a string with its context.
    pub fn push(&mut self, s: &NixString) {
        self.bytes.extend_from_slice(s.as_bytes());
        if let Some(c) = s.context() {
            self.context.extend(c.iter().cloned());
        }
    }

    /// Appends plain bytes.
    pub fn push_bytes(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }

    /// Adds context elements without text.
    pub fn add_context(&mut self, c: &Context) {
        self.context.extend(c.iter().cloned());
    }

    /// The finished string.
    pub fn finish(self) -> NixString {
        NixString::with_context(self.bytes, self.context)
    }
}
