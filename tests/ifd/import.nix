# A generated `.nix` file, imported from a derivation's output.
{ nonce }:
let
  inherit (import ../builds/lib.nix { inherit nonce; }) mk;
  gen = mk {
    name = "gen";
    script = ''echo '{ a = 1; b = "two"; f = x: x * 2; }' > $out'';
  };
  imported = import gen;
in
{ inherit (imported) a b; c = imported.f 21; }
