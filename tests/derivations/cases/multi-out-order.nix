with import ../lib.nix;
mk { name = "multi-out-order"; outputs = [ "lib" "out" "bin" ]; }
