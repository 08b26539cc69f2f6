with import ../lib.nix;
let a = leaf "a"; b = mk { name = "b"; inherit a; }; in mk { name = "discard-chain"; d = builtins.unsafeDiscardOutputDependency b.drvPath; }
