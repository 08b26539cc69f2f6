{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "build-dir"; script = "ls -a /build > $out; ls -a /tmp >> $out; [ -e /homeless-shelter ] || echo no-home >> $out"; }
