{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "fod-builder-fails"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; script = "exit 1"; }
