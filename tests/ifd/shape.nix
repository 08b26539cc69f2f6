# An attribute set whose shape depends on a built value: the names come from a build.
{ nonce }:
let
  inherit (import ../builds/lib.nix { inherit nonce; }) mk;
  names = mk { name = "names"; script = ''echo '["alpha","beta","gamma"]' > $out''; };
  count = mk { name = "count"; script = "echo 4 > $out"; };
  list = builtins.fromJSON (builtins.readFile names);
  n = builtins.fromJSON (builtins.readFile count);
in
builtins.listToAttrs (map (name: { inherit name; value = builtins.stringLength name; }) list)
// builtins.listToAttrs (builtins.genList (i: { name = "n${toString i}"; value = i; }) n)
