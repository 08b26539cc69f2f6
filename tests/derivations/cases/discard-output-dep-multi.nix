with import ../lib.nix;
let a = mk { name = "a"; outputs = [ "out" "dev" ]; }; in mk { name = "discard-multi"; d = builtins.unsafeDiscardOutputDependency a.drvPath; x = a.dev; }
