{ nonce }: with import ../lib.nix { inherit nonce; };
# The busybox is only reachable through the dependency: a requisite, not a reference.
let dep = mk { name = "req-dep"; script = "echo ${bb} > $out"; };
in mk { name = "requisites"; disallowedRequisites = [ bb ]; script = "echo ${dep} > $out"; }
