with import ../lib.nix;
fod { name = "fod-md5-flat-base16"; outputHashMode = "flat"; outputHashAlgo = "md5"; outputHash = "5d41402abc4b2a76b9719d911017c592"; }
