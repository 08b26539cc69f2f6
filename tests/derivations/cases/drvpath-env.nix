with import ../lib.nix;
let a = leaf "a"; in mk { name = "drvpath-env"; d = a.drvPath; }
