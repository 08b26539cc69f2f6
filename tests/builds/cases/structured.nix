{ nonce }: with import ../lib.nix { inherit nonce; };
# Structured attributes: no derivation variables in the environment; .attrs.json and
# .attrs.sh in the build directory (busybox's sh has no `declare`, so the output paths
# are read from .attrs.sh with sed).
mk {
  name = "structured";
  __structuredAttrs = true;
  outputs = [ "out" "doc" ];
  n = 42; f = 1.5; b = true; no = false; z = null;
  l = [ "a b" 1 "it's" ];
  o = { k = "v"; "k 2" = 3; };
  nested = [ [ 1 ] ];
  "not-a-var" = "x";
  script = ''
    export PATH=${bb}/bin
    o() { sed -n "s/.*\['$1'\]='\([^']*\)'.*/\1/p" /build/.attrs.sh; }
    mkdir $(o doc)
    { env | grep -v '^NIX_ATTRS_' | sort; cat /build/.attrs.json; echo; cat /build/.attrs.sh; } > $(o out)
  '';
}
