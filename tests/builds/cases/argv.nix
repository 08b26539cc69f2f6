{ nonce }: with import ../lib.nix { inherit nonce; };
# argv[0] is the builder's base name: busybox picks its applet from it.
derivation {
  name = "argv-${nonce}";
  system = "x86_64-linux";
  builder = "${bb}/bin/busybox";
  args = [ "sh" "-c" "echo \"$0 $*\" > $out" "first" "second arg" ];
}
