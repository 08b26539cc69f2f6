{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "flat-file"; script = "echo hello > $out; chmod +x $out"; }
