with import ../lib.nix;
fod { name = "fod-md5-recursive-nix32"; outputHashMode = "recursive"; outputHashAlgo = "md5"; outputHash = "4jqlbi14cxf6wpcajbphm40hax"; }
