with import ../lib.nix;
let f1 = fod { name = "f"; outputHashAlgo = "sha256"; outputHash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; builder = "/bin/a"; }; f2 = fod { name = "f"; outputHashAlgo = "sha256"; outputHash = "094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic"; builder = "/bin/b"; }; in mk { name = "two-fods"; inherit f1 f2; }
