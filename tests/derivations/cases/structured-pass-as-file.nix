with import ../lib.nix;
mk { name = "structured-paf"; __structuredAttrs = true; passAsFile = [ "x" ]; x = "text"; }
