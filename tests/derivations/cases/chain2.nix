with import ../lib.nix;
let a = leaf "a"; in mk { name = "chain2"; dep = a; }
