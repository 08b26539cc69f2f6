{ nonce }: with import ../lib.nix { inherit nonce; };
# Outputs are canonicalised (modes 0444/0555, mtime 1); a dependent build sees that.
let dep = mk {
  name = "canon-dep";
  script = ''
    mkdir -p $out/d
    echo a > $out/f; chmod 777 $out/f
    echo b > $out/x; chmod 700 $out/x
    chmod 755 $out/d
    touch -d '2001-02-03 04:05:06' $out/f
    echo c > $out/d/g; chmod 600 $out/d/g
    ln -s f $out/l
  '';
}; in [ dep (mk { name = "canon"; script = "cd ${dep}; stat -c '%n %a %Y %u %g' . f x d d/g > $out; stat -c '%n %Y' l >> $out"; }) ]
