{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "cores"; script = "echo $NIX_BUILD_CORES > $out"; }
