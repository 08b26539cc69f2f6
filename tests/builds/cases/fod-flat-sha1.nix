{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "fod-flat-sha1";
  outputHashAlgo = "sha1";
  outputHash = "k9cxghl2n4pyr041ib00qbkmax3gfrd9";
  script = "echo 'single file' > $out";
}
