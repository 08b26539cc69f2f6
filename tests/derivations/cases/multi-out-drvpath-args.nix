with import ../lib.nix;
let a = mk { name = "a"; outputs = [ "lib" "out" "dev" ]; }; b = mk { name = "b"; inherit a; outputs = [ "out" "man" ]; }; in mk { name = "multi-drvpath-args"; args = [ b.drvPath a.dev b.man ]; }
