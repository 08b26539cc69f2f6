with import ../lib.nix;
mk { name = "path-filter-named"; src = builtins.path { path = ../files/tree; name = "filtered-tree"; filter = p: t: t != "symlink"; }; }
