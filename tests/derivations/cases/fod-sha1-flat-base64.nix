with import ../lib.nix;
fod { name = "fod-sha1-flat-base64"; outputHashMode = "flat"; outputHashAlgo = "sha1"; outputHash = "qvTGHdzF6KLavt4PO0gs2a6pQ00="; }
