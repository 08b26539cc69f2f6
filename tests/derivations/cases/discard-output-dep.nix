with import ../lib.nix;
let a = leaf "a"; in mk { name = "discard-out"; d = builtins.unsafeDiscardOutputDependency a.drvPath; }
