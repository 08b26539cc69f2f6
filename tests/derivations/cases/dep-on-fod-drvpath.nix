with import ../lib.nix;
let f = fod { name = "f"; outputHashAlgo = "sha256"; outputHash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; }; in mk { name = "dep-on-fod-drvpath"; d = f.drvPath; }
