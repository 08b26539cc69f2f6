{ nonce }: with import ../lib.nix { inherit nonce; };
# The sandbox refuses setuid and setgid bits.
mk {
  name = "setuid";
  script = ''
    mkdir $out
    echo x > $out/f
    if chmod 4755 $out/f 2> $out/err; then echo allowed > $out/result; else echo refused > $out/result; fi
    chmod 2755 $out/f 2>> $out/err || true
    stat -c %a $out/f > $out/mode
  '';
}
