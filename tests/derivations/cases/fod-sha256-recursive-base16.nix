with import ../lib.nix;
fod { name = "fod-sha256-recursive-base16"; outputHashMode = "recursive"; outputHashAlgo = "sha256"; outputHash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; }
