{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "ls-dev";
  script = ''
    ls /dev > $out
    ls /dev/pts >> $out
    for l in /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx; do readlink $l >> $out; done
    stat -c '%n %F %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/shm /dev/pts >> $out
  '';
}
