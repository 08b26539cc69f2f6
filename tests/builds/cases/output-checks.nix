{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "output-checks";
  __structuredAttrs = true;
  outputChecks.out = { maxSize = 10000; maxClosureSize = 10000; allowedReferences = [ ]; disallowedRequisites = [ bb ]; };
  script = ''
    export PATH=${bb}/bin
    o() { sed -n "s/.*\['$1'\]='\([^']*\)'.*/\1/p" /build/.attrs.sh; }
    echo small > $(o out)
  '';
}
