with import ../lib.nix;
mk { name = "basic"; }
