with import ../lib.nix;
fod { name = "fod-sha1-recursive-nix32"; outputHashMode = "recursive"; outputHashAlgo = "sha1"; outputHash = "9m1skbnr5i43n3yypvda5s65vhfwdx5a"; }
