with import ../lib.nix;
mk { name = "placeholder"; outputs = [ "out" "dev" ]; p = builtins.placeholder "out"; q = "${builtins.placeholder "dev"}/include"; }
