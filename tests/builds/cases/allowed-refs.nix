{ nonce }: with import ../lib.nix { inherit nonce; };
# References within what is allowed pass.
let dep = mk { name = "allowed-dep"; script = "echo x > $out"; };
in mk {
  name = "allowed-refs";
  allowedReferences = [ "out" dep ];
  allowedRequisites = [ "out" dep ];
  disallowedReferences = [ bb ];
  script = "mkdir $out; echo ${dep} $out > $out/refs";
}
