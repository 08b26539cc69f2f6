with import ../lib.nix;
fod { name = "fod-md5-flat-nix32"; outputHashMode = "flat"; outputHashAlgo = "md5"; outputHash = "4jqlbi14cxf6wpcajbphm40hax"; }
