with import ../lib.nix;
mk { name = "structured-special-keys"; __structuredAttrs = true; "a b" = 1; "ü" = "ö"; ctl = "\u0001"; }
