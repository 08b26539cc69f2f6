with import ../lib.nix;
mk { name = "source-space"; src = builtins.path { path = ../files + "/with space"; name = "with-space"; }; }
