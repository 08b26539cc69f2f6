{ nonce }: with import ../lib.nix { inherit nonce; };
let dep = mk { name = "dep-name"; script = "echo x > $out"; };
in mk { name = "ref-by-name"; script = "mkdir $out; touch $out/$(basename )"; }
