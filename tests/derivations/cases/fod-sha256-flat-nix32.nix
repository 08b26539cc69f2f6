with import ../lib.nix;
fod { name = "fod-sha256-flat-nix32"; outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic"; }
