{ nonce }: with import ../lib.nix { inherit nonce; };
# c depends on b only, b refers to a: a is in c's sandbox through b's references.
let
  a = mk { name = "cl-a"; script = "echo deep-content > $out"; };
  b = mk { name = "cl-b"; script = "echo ${a} > $out"; };
in mk { name = "cl-c"; script = "cat $(cat ${b}) > $out; ls /nix/store >> $out"; }
