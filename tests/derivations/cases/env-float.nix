with import ../lib.nix;
mk { name = "env-float"; x = 1.5; y = 0.1; z = 100000000.0; }
