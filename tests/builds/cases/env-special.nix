{ nonce }: with import ../lib.nix { inherit nonce; };
# Environment values with newlines, quotes, unicode and an empty one.
mk {
  name = "env-special";
  multi = "line one\nline two\n";
  quotes = "it's \"quoted\" \\ back";
  unicode = "ünïcödé ✓";
  empty = "";
  script = "for v in multi quotes unicode empty; do eval \"printf '%s|' \\\"\\$$v\\\"\"; echo; done > $out";
}
