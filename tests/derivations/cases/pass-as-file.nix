with import ../lib.nix;
mk { name = "pass-as-file"; passAsFile = [ "big" "other" ]; big = "lots of text"; other = "x"; }
