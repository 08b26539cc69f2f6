with import ../lib.nix;
let step = prev: n: mk { name = "step-${toString n}"; inherit prev; }; in builtins.foldl' step (leaf "base") [ 1 2 3 4 5 6 7 8 9 10 ]
