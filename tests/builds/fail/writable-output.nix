{ nonce }: with import ../lib.nix { inherit nonce; };
# A world-writable top-level output is rejected.
mk { name = "writable-output"; script = "mkdir $out; chmod 777 $out"; }
