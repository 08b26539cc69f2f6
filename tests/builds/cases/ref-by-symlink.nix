{ nonce }: with import ../lib.nix { inherit nonce; };
# A reference only through a symlink target.
let dep = mk { name = "dep-link"; script = "echo x > $out"; };
in mk { name = "ref-by-symlink"; script = "mkdir $out; ln -s ${dep} $out/link"; }
