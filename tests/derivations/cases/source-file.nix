with import ../lib.nix;
mk { name = "source-file"; src = ../files/hello.txt; }
