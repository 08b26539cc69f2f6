# Shared by the build cases: the static busybox and `mk`, a derivation whose builder is
# busybox's sh running `script` (with `set -e`) and whose name carries the run's nonce, so
# no output ever exists before the run.
{ nonce }:
rec {
  bb = builtins.path { path = /var/lib/tvix-tests/busybox; name = "busybox"; };
  mk = { name, script, ... }@a:
    derivation ({
      system = "x86_64-linux";
      builder = "${bb}/bin/sh";
      PATH = "${bb}/bin";
      args = [ "-c" "set -e\n${script}" ];
    } // removeAttrs a [ "script" "name" ] // { name = "${name}-${nonce}"; });
}
