{ nonce }: with import ../lib.nix { inherit nonce; };
let dep = mk { name = "allowed-dep"; script = "echo x > $out"; };
in mk { name = "allowed-ref"; allowedReferences = [ ]; script = "echo ${dep} > $out"; }
