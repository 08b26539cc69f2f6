with import ../lib.nix;
mk { name = "path-named"; src = builtins.path { path = ../files/dir; name = "renamed-src"; }; }
