{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "self-ref"; script = "mkdir $out; echo $out > $out/self; ln -s $out/self $out/link"; }
