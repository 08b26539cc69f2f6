with import ../lib.nix;
mk { name = "env-types"; i = 42; neg = -7; t = true; f = false; n = null; l = [ "a" 1 true null [ "x" "y" ] ]; s = "plain"; e = ""; }
