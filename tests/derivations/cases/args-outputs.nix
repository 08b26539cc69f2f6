with import ../lib.nix;
let a = mk { name = "a"; outputs = [ "out" "bin" ]; }; in mk { name = "args-outputs"; args = [ "-c" "${a.bin}/bin/x ${a}" ]; }
