{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "feature"; requiredSystemFeatures = [ "tvix-test-feature" "big-parallel" ]; script = "echo > $out"; }
