with import ../lib.nix;
mk { name = "dep-list"; deps = [ (leaf "a") (leaf "b") "plain" ]; }
