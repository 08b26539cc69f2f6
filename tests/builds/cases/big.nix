{ nonce }: with import ../lib.nix { inherit nonce; };
# About 2 MB in one file, so the output spans many chunks.
mk {
  name = "big";
  script = ''
    i=0
    : > $out
    while [ $i -lt 200 ]; do
      head -c 10000 /dev/zero | tr '\0' "$(printf "\\$((i % 8 + 60))")" >> $out
      i=$((i+1))
    done
  '';
}
