{ nonce }: with import ../lib.nix { inherit nonce; };
# A fixed-output derivation sees its impureEnvVars and an nsswitch.conf; its output is
# checked through the hash of what it printed.
mk {
  name = "fod-env";
  impureEnvVars = [ "TVIX_TEST_IMPURE" "TVIX_TEST_UNSET" ];
  outputHashMode = "flat";
  outputHashAlgo = "sha256";
  outputHash = builtins.hashString "sha256" "impure-value\nhosts: files dns\nservices: files\nNIX_OUTPUT_CHECKED=1\nTVIX_TEST_UNSET=\n";
  script = "{ echo $TVIX_TEST_IMPURE; cat /etc/nsswitch.conf; env | grep -E '^(NIX_OUTPUT_CHECKED|TVIX_TEST_UNSET)=' | sort; } > $out";
}
