{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "silent"; script = "echo start; busybox sleep 20"; }
