{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "etc-files"; script = "cat /etc/passwd /etc/group /etc/hosts > $out"; }
