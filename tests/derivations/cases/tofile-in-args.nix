with import ../lib.nix;
let s = builtins.toFile "builder.sh" "echo $out"; in mk { name = "tofile-args"; args = [ s ]; }
