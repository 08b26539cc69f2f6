with import ../lib.nix;
mk { name = "filter-source"; src = builtins.filterSource (p: t: t == "directory" || builtins.match ".*\\.txt" p != null) ../files/dir; }
