{ nonce }: with import ../lib.nix { inherit nonce; };
let dep = mk { name = "dep-link"; script = "echo x > $out"; };
in mk { name = "ref-by-symlink"; script = "mkdir $out; ln -s  $out/link"; }
