with import ../lib.nix;
let a = leaf "a"; b = mk { name = "b"; inherit a; }; in mk { name = "getcontext-roundtrip"; x = builtins.appendContext "text" (builtins.getContext "${b.drvPath}${a}"); }
