{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "symlink-output"; script = "ln -s /some/where $out"; }
