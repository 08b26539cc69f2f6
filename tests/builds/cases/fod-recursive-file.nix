{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "fod-recursive-file";
  outputHashMode = "recursive";
  outputHashAlgo = "sha256";
  outputHash = "0v033h4fi0kjmr14knqd4x18l9w973nph2c6vcblxx3j003ps45b";
  script = "echo 'single file' > $out";
}
