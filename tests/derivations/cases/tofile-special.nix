with import ../lib.nix;
mk { name = "tofile-special"; f = builtins.toFile "special" "tab\t nl\n quote\" unié ${"$"}{x}"; }
