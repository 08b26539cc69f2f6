# Helpers shared by the derivation cases.
rec {
  mk = attrs: derivation ({ builder = "/bin/sh"; system = "x86_64-linux"; } // attrs);
  fod = attrs: mk ({ outputHashMode = "flat"; } // attrs);
  leaf = name: mk { inherit name; args = [ "-c" "echo ${name} > $out" ]; };
}
