# A slow graph for the dashboard's terminal tests: `top` needs `dep`; each prints a line a
# second, so a test sees a running build, its timer and its log.
{ nonce, fail ? false }: with import ../builds/lib.nix { inherit nonce; };
let
  dep = mk {
    name = "slow-dep";
    script = "echo dep-start; sleep 2; echo dep-done; echo x > $out";
  };
in mk {
  name = "slow-top";
  script = ''
    echo top-start ${dep}
    for i in 1 2 3 4 5; do echo tick $i; sleep 1; done
    ${if fail then "echo going-wrong >&2; exit 3" else "echo y > $out"}
  '';
}
