{ nonce }: with import ../lib.nix { inherit nonce; };
# A chain of five derivations, each extending its input.
let step = prev: i: mk { name = "chain-${toString i}"; script = "{ ${if prev == null then "true" else "cat ${prev}"}; echo step ${toString i}; } > $out"; };
in builtins.foldl' step null [ 1 2 3 4 5 ]
