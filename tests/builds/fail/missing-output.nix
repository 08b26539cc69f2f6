{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "missing-output"; script = "echo no output"; }
