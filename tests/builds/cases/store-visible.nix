{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "store-visible"; script = "ls /nix/store > $out"; }
