{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "placeholder";
  outputs = [ "out" "bin" ];
  where = "${builtins.placeholder "bin"}/tool";
  script = "mkdir $bin; echo $where > $out; echo ${builtins.placeholder "out"} >> $out";
}
