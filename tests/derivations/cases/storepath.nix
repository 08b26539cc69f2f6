with import ../lib.nix;
let t = builtins.toFile "sp" "content"; in mk { name = "storepath"; p = builtins.storePath t; sub = builtins.storePath "${t}"; }
