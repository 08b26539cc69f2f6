{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "builder-fails"; script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line $i; done; exit 3"; }
