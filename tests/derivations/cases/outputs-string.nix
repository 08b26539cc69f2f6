with import ../lib.nix;
# `derivation` maps over `outputs`, so a string works only with derivationStrict directly:
# it is split at whitespace.
let s = builtins.derivationStrict { name = "outputs-string"; builder = "/bin/sh"; system = "x86_64-linux"; outputs = "out  dev\tbin"; };
in mk { name = "uses-outputs-string"; d = s.dev; b = s.bin; }
