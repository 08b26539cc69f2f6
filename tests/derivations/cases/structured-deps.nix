with import ../lib.nix;
let a = leaf "a"; b = mk { name = "b"; outputs = [ "out" "dev" ]; }; in mk { name = "structured-deps"; __structuredAttrs = true; deps = [ a b.dev ]; d = a.drvPath; src = ../files/hello.txt; set = { inherit a; }; }
