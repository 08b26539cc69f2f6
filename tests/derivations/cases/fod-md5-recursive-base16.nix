with import ../lib.nix;
fod { name = "fod-md5-recursive-base16"; outputHashMode = "recursive"; outputHashAlgo = "md5"; outputHash = "5d41402abc4b2a76b9719d911017c592"; }
