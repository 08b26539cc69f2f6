{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "output-checks-fail";
  __structuredAttrs = true;
  outputChecks.out.maxSize = 100;
  script = ''
    export PATH=${bb}/bin
    o() { sed -n "s/.*\['$1'\]='\([^']*\)'.*/\1/p" /build/.attrs.sh; }
    head -c 1000 /dev/zero > $(o out)
  '';
}
