{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "timeout"; script = "while true; do echo tick; busybox sleep 0.2; done"; }
