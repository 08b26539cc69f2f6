with import ../lib.nix;
mk { name = "tofile-odd-name"; f = builtins.toFile "a+b=c?.txt" "x"; }
