with import ../lib.nix;
let a = leaf "a"; in mk { name = "ctx-tostring"; x = toString [ a a.drvPath ]; }
