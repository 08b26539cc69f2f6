with import ../lib.nix;
let a = leaf "a"; b = leaf "b"; in mk { name = "ctx-builtins"; j = builtins.toJSON { x = a; y = [ b.drvPath ]; }; r = builtins.replaceStrings [ "/nix" ] [ "/gnu" ] "${a}"; c = builtins.concatStringsSep ":" [ "${a}" "${b}" ]; s = builtins.substring 0 20 "${b}"; }
