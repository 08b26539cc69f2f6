with import ../lib.nix;
mk { name = "long-string"; s = builtins.concatStringsSep "" (builtins.genList (i: "line ${toString i}\n") 2000); }
