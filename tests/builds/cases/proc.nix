# The namespaces and process flags a build gets. /proc/self/uid_map and gid_map are left
# out on purpose: runc refuses a user namespace that does not map container uid/gid 0, so
# tvix maps it to an unused host id (one extra line, `0 <id> 1`, that no build process
# runs as); the build user's own mapping (`1000 <host uid> 1`, `100 <host gid> 1`) is
# checked in builder/tests/oci.rs.
{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "proc"; script = "ls /proc/self/ns | sort > $out; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status >> $out"; }
