with import ../lib.nix;
let a = mk { name = "a"; outputs = [ "out" "dev" ]; }; b = leaf "b"; in mk { name = "mixed"; x = "${a}${b.drvPath}${a.dev}${../files/hello.txt}"; }
