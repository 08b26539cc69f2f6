with import ../lib.nix;
# derivationStrict returns only { drvPath, out }; nix-instantiate prints nothing for it,
# so it is checked as an input of a derivation that uses its output.
let s = builtins.derivationStrict { name = "strict"; builder = "/bin/sh"; system = "x86_64-linux"; };
in mk { name = "uses-strict"; x = s.out; d = s.drvPath; }
