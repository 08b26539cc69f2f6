{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "missing-second"; outputs = [ "out" "dev" ]; script = "echo > $out"; }
