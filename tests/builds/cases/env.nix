{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "env"; script = "env | sort > $out"; }
