{ lib }:
let
  ⟨numbersDef⟩numbers = lib.range 1 4;
  total = lib.foldl' (a: b: a + b) 0 ⟨numbersUse⟩numbers;
  upper = lib.strings.⟨toUpper⟩toUpper "nix";
in
{
  inherit total upper;
  attrs = lib.⟨dot⟩id;
  viaWith = with lib; ⟨withName⟩concatStrings [ "a" "b" ];
  local = let s = { ⟨localDef⟩a = 1; }; in s.⟨localUse⟩a;
  shadowed = with lib; ⟨shadowed⟩map toUpper [ "a" ];
}
