with import ../lib.nix;
mk { name = "structured-nulls"; __structuredAttrs = true; __ignoreNulls = true; n = null; x = "y"; }
