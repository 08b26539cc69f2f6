with import ../lib.nix;
let a = leaf "a"; b = mk { name = "b"; inherit a; src = ../files/hello.txt; }; in mk { name = "drvpath-chain"; d = b.drvPath; }
