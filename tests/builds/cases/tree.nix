{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "tree";
  script = ''
    mkdir -p $out/a/b/c $out/empty
    echo deep > $out/a/b/c/file
    printf "" > $out/zero
    echo '#!/x' > $out/a/exe
    chmod +x $out/a/exe
    ln -s a/b $out/rel
    ln -s /nonexistent $out/dangling
    echo u > "$out/sp ace"
    echo u > $out/ünï
  '';
}
