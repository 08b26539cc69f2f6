with import ../lib.nix;
let a = mk { name = "a"; outputs = [ "out" "dev" ]; }; in mk { name = "structured-path-drv"; __structuredAttrs = true; src = ../files/hello.txt; dep = a; dev = a.dev; list = [ a ../files/tree ]; }
