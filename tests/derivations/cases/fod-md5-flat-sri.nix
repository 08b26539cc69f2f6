with import ../lib.nix;
fod { name = "fod-md5-flat-sri"; outputHashMode = "flat"; outputHash = "md5-XUFAKrxLKna5cZ2REBfFkg=="; }
