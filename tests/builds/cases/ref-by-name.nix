{ nonce }: with import ../lib.nix { inherit nonce; };
# A reference only through a file name.
let dep = mk { name = "dep-name"; script = "echo x > $out"; };
in mk { name = "ref-by-name"; script = "mkdir $out; touch $out/$(basename ${dep})"; }
