{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "pass-as-file";
  big = "some\ncontent with 'quotes' and $dollars";
  other = "plain";
  passAsFile = [ "big" "absent" ];
  script = "{ env | sort | grep -v '^big=' ; cat $bigPath; } > $out";
}
