with import ../lib.nix;
fod { name = "fod-sha1-flat-nix32"; outputHashMode = "flat"; outputHashAlgo = "sha1"; outputHash = "9m1skbnr5i43n3yypvda5s65vhfwdx5a"; }
