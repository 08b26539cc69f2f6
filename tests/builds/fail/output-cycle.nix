{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "output-cycle"; outputs = [ "out" "dev" ]; script = "echo $dev > $out; echo $out > $dev"; }
