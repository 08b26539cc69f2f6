# `readFile` of an output, and of a file inside an output directory.
{ nonce }:
let
  inherit (import ../builds/lib.nix { inherit nonce; }) mk;
  flat = mk { name = "flat"; script = "printf 'hello\\nworld' > $out"; };
  dir = mk {
    name = "dir";
    script = "mkdir -p $out/etc; echo value > $out/etc/conf";
  };
in
[ (builtins.readFile flat) (builtins.readFile "${dir}/etc/conf") (builtins.hashFile "sha256" "${dir}/etc/conf") ]
