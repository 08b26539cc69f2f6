with import ../lib.nix;
let f = fod { name = "f"; outputHashAlgo = "sha1"; outputHash = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"; }; g = mk { name = "g"; inherit f; }; in mk { name = "fod-chain"; inherit g f; }
