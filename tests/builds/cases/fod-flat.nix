{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "fod-flat";
  outputHashMode = "flat";
  outputHashAlgo = "sha256";
  outputHash = builtins.hashString "sha256" "content ${nonce}";
  script = "printf %s 'content ${nonce}' > $out";
}
