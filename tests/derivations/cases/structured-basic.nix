with import ../lib.nix;
mk { name = "structured"; __structuredAttrs = true; }
