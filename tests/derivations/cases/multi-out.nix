with import ../lib.nix;
mk { name = "multi-out"; outputs = [ "out" "dev" "lib" ]; }
