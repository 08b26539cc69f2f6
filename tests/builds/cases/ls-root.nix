{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "ls-root"; script = "ls -a / > $out; ls -a /etc >> $out"; }
