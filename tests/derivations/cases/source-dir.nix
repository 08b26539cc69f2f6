with import ../lib.nix;
mk { name = "source-dir"; src = ../files/dir; }
