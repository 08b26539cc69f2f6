with import ../lib.nix;
mk { name = "env-paths-in-lists"; l = [ ../files/hello.txt [ ../files/dir ] ]; s = toString ../files/hello.txt; }
