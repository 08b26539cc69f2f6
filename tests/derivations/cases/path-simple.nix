with import ../lib.nix;
mk { name = "path-simple"; src = builtins.path { path = ../files/hello.txt; }; }
