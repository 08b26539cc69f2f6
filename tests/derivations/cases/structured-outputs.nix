with import ../lib.nix;
mk { name = "structured-outputs"; __structuredAttrs = true; outputs = [ "out" "dev" ]; args = [ "-c" "true" ]; }
