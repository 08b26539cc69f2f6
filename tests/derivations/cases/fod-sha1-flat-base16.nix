with import ../lib.nix;
fod { name = "fod-sha1-flat-base16"; outputHashMode = "flat"; outputHashAlgo = "sha1"; outputHash = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"; }
