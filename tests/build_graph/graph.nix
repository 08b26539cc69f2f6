# A graph of `n` derivations for the coordinator's tests and figures: node 0 has no
# inputs, node i > 0 depends on node (i - 1) / 2 and, from i = 3 on, on node i - 3; the
# last node depends on every node without dependents, so it is the only target. Builders
# are the static busybox's sh; every name carries the run's nonce, so no output exists
# before the run. `fail` names a node whose builder fails; `sleep` slows every build.
{ nonce, n ? 50, fail ? -1, sleep ? "0" }:
let
  bb = builtins.path { path = /var/lib/tvix-tests/busybox; name = "busybox"; };
  inputsOf = i:
    if i == 0 then [ ]
    else [ ((i - 1) / 2) ] ++ (if i >= 3 then [ (i - 3) ] else [ ]);
  # Nodes some other node (below the last) depends on.
  used = builtins.listToAttrs (builtins.concatMap
    (i: map (j: { name = toString j; value = true; }) (inputsOf i))
    (builtins.genList (i: i) (n - 1)));
  inputsOfLast = builtins.filter (j: !(used ? ${toString j})) (builtins.genList (i: i) (n - 1));
  mk = i: ins: derivation {
    name = "g${toString i}-${nonce}";
    system = "x86_64-linux";
    builder = "${bb}/bin/sh";
    PATH = "${bb}/bin";
    deps = map (j: nodes.${toString j}) ins;
    args = [ "-c" ''
      set -e
      echo building node ${toString i}
      ${if i == fail then "echo node ${toString i} fails; exit 1" else ""}
      sleep ${sleep}
      mkdir $out
      echo ${toString i} > $out/value
      for d in $deps; do cat $d/value >> $out/inputs; done
    '' ];
  };
  nodes = builtins.listToAttrs (builtins.genList
    (i: { name = toString i; value = mk i (if i == n - 1 then inputsOfLast else inputsOf i); })
    n);
in
nodes.${toString (n - 1)}
