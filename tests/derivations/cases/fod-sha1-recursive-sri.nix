with import ../lib.nix;
fod { name = "fod-sha1-recursive-sri"; outputHashMode = "recursive"; outputHashAlgo = "sha1"; outputHash = "sha1-qvTGHdzF6KLavt4PO0gs2a6pQ00="; }
