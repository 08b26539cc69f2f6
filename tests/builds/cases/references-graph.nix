{ nonce }: with import ../lib.nix { inherit nonce; };
# Outputs referring to inputs and to each other, registered in dependency order.
let
  lib = mk { name = "rg-lib"; script = "echo lib > $out"; };
  d = mk { name = "rg"; outputs = [ "out" "bin" ]; script = "mkdir $out $bin; ln -s ${lib} $out/lib; echo $out > $bin/prefix"; };
in [ d d.bin (mk { name = "rg-user"; script = "cat ${d.bin}/prefix > $out; ls ${d}/lib >> $out"; }) ]
