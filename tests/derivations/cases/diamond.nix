with import ../lib.nix;
let a = leaf "a"; b = mk { name = "b"; inherit a; }; c = mk { name = "c"; inherit a; }; in mk { name = "diamond"; inherit b c; }
