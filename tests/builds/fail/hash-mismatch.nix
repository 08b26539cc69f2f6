{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "hash-mismatch";
  outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  script = "echo ${nonce} > $out";
}
