with import ../lib.nix;
fod { name = "fod-md5-recursive-sri"; outputHashMode = "recursive"; outputHash = "md5-XUFAKrxLKna5cZ2REBfFkg=="; }
