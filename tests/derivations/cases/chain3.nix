with import ../lib.nix;
let a = leaf "a"; b = mk { name = "b"; dep = a; }; in mk { name = "chain3"; dep = b; script = "${b}/bin/b"; }
