with import ../lib.nix;
mk { name = "path-filter-type"; src = builtins.path { path = ../files/dir; name = "no-links"; filter = p: t: t != "symlink" && baseNameOf p != "sub"; }; }
