with import ../lib.nix;
(mk { name = "multi-out-select"; outputs = [ "out" "dev" ]; }).dev
