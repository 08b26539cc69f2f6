with import ../lib.nix;
mk { name = "path-filter"; src = builtins.path { path = ../files/dir; filter = p: t: !(builtins.match ".*\\.log" p != null); }; }
