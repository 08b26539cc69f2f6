with import ../lib.nix;
let a = mk { name = "a"; outputs = [ "out" "dev" ]; }; in mk { name = "dep-both"; x = "${a.out} ${a.dev}"; }
