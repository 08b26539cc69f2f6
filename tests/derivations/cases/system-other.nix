with import ../lib.nix;
mk { name = "sys"; system = "aarch64-darwin"; }
