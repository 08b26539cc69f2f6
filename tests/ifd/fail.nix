# The build that evaluation needs fails: its log tail is shown, evaluation stops.
{ nonce }:
let
  inherit (import ../builds/lib.nix { inherit nonce; }) mk;
  broken = mk { name = "broken"; script = "echo about to fail; exit 3"; };
in
builtins.readFile broken
