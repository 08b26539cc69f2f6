with import ../lib.nix;
let a = leaf "a"; in fod { name = "fod-inputs"; outputHashAlgo = "sha256"; outputHash = "094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic"; dep = a; src = ../files/hello.txt; }
