{ nonce }: with import ../lib.nix { inherit nonce; };
# exportReferencesGraph: the closure of a dependency, written to a file in /build.
let
  a = mk { name = "eg-a"; script = "echo ${bb} > $out"; };
  b = mk { name = "eg-b"; script = "mkdir $out; echo ${a} > $out/a; echo $out > $out/self"; };
in mk {
  name = "export-graph";
  exportReferencesGraph = [ "graph" b "bb-graph" bb ];
  script = "cat /build/graph /build/bb-graph > $out";
}
