{ nonce }: with import ../lib.nix { inherit nonce; };
# What a fixed-output build sees (host files, network interfaces) compared through the
# hash the mismatch reports.
mk {
  name = "fod-sandbox";
  outputHashMode = "recursive";
  outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  script = "mkdir $out; ls /etc > $out/etc; cat /etc/nsswitch.conf /etc/resolv.conf /etc/services /etc/hosts > $out/files; id > $out/id; env | sort > $out/env";
}
