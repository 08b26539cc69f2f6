{ nonce }: with import ../lib.nix { inherit nonce; };
let d = mk {
  name = "multi";
  outputs = [ "out" "dev" "lib" ];
  script = "mkdir $out $dev $lib; echo $lib > $out/uses-lib; echo $out > $dev/uses-out; echo lib > $lib/lib";
}; in [ d d.dev d.lib ]
