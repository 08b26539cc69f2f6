with import ../lib.nix;
fod { name = "fod-md5-flat-base64"; outputHashMode = "flat"; outputHashAlgo = "md5"; outputHash = "XUFAKrxLKna5cZ2REBfFkg=="; }
