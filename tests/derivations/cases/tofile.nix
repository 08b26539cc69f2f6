with import ../lib.nix;
mk { name = "tofile"; f = builtins.toFile "script.sh" "echo hello\n"; }
