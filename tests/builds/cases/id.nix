{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "id"; script = "id > $out; id -u -n >> $out; id -g -n >> $out"; }
