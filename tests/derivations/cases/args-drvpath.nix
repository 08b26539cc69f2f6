with import ../lib.nix;
let a = leaf "a"; in mk { name = "args-drvpath"; args = [ a.drvPath ]; }
