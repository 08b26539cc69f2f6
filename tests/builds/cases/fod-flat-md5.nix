{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "fod-flat-md5";
  outputHashAlgo = "md5";
  outputHash = "11s7r5yy3yi5rxfdcp1vmcvclf";
  script = "echo 'single file' > $out";
}
