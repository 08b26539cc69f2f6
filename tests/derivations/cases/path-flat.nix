with import ../lib.nix;
mk { name = "path-flat"; src = builtins.path { path = ../files/hello.txt; recursive = false; }; }
