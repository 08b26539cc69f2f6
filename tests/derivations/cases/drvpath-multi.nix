with import ../lib.nix;
let a = mk { name = "a"; outputs = [ "out" "dev" ]; }; in mk { name = "drvpath-multi"; d = "${a.drvPath}"; }
