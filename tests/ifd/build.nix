# A derivation whose build script comes from a built value (`tvix build` / `nix-build`).
{ nonce }:
let
  inherit (import ../builds/lib.nix { inherit nonce; }) mk;
  gen = mk { name = "gen"; script = ''echo '{ n = 41; }' > $out''; };
in
mk { name = "final"; script = "echo ${toString ((import gen).n + 1)} > $out"; }
