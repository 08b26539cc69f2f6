{ pkgs, ⟨unusedFormal⟩unused ? 1, ... }:
let
  /** Says hello. */
  ⟨defGreeting⟩greeting = "hello";
  ⟨unusedLet⟩spare = 2;
  helper = import ⟨link⟩./other.nix;
  shout = s: builtins.⟨builtinAttr⟩stringLength s;
in
rec {
  message = shout ⟨useGreeting⟩greeting;
  again = ⟨recUse⟩message + greeting;
  "quoted" = 1;
  ⟨selfRef⟩pkgs = pkgs;
  nested = {
    inner = helper.value;
    sum = ⟨builtin⟩map (x: x) [ ];
  };
  missing = ⟨undefined⟩undefinedName;
  shadowed = with { map = 1; }; ⟨withShadow⟩map;
  ⟨complete⟩
}
