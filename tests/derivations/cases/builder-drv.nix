with import ../lib.nix;
let sh = leaf "sh"; in mk { name = "builder-drv"; builder = "${sh}/bin/sh"; }
