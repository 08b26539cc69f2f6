with import ../lib.nix;
let a = mk { name = "a"; outputs = [ "out" "dev" "doc" ]; }; in mk { name = "dep-all"; deps = a.all; }
