{ nonce }: with import ../lib.nix { inherit nonce; };
# Only the used output of an input derivation is in the sandbox.
let d = mk { name = "dep-outs"; outputs = [ "out" "dev" ]; script = "echo out > $out; echo ${bb} > $dev"; };
in mk { name = "dep-output-only"; script = "ls /nix/store > $out; cat ${d.dev} >> $out"; }
