{ nonce }: with import ../lib.nix { inherit nonce; };
# A fixed output that refers to itself is hashed modulo its own path.
mk { name = "fod-self-ref"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; script = "echo $out > $out"; }
