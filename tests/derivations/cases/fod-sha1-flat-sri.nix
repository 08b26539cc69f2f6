with import ../lib.nix;
fod { name = "fod-sha1-flat-sri"; outputHashMode = "flat"; outputHashAlgo = "sha1"; outputHash = "sha1-qvTGHdzF6KLavt4PO0gs2a6pQ00="; }
