{ nonce }: with import ../lib.nix { inherit nonce; };
let
  a = mk { name = "cl-a"; script = "echo deep-content > $out"; };
  b = mk { name = "cl-b"; script = "echo  > $out"; };
in mk { name = "cl-c"; script = "cat $(cat ) > $out; ls /nix/store >> $out"; }
