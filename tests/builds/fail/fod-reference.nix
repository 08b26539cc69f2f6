{ nonce }: with import ../lib.nix { inherit nonce; };
# A fixed output that refers to another store path: hashed like any other.
mk { name = "fod-ref"; outputHashMode = "recursive"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; script = "echo ${bb} > $out"; }
