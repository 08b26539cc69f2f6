with import ../lib.nix;
mk { name = "path-sha256"; src = builtins.path { path = ../files/hello.txt; name = "h"; recursive = false; sha256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"; }; }
