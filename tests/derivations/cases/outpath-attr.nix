with import ../lib.nix;
(mk { name = "outpath-attr"; outPath = "not-used"; drvPath = "nor-this"; type = "x"; }).out
