{ nonce }: with import ../lib.nix { inherit nonce; };
let dep = mk { name = "forbidden-dep"; script = "echo x > $out"; };
in mk { name = "forbidden-ref"; disallowedReferences = [ dep ]; script = "echo ${dep} > $out"; }
