with import ../lib.nix;
mk { name = "structured-false"; __structuredAttrs = false; x = 1; }
