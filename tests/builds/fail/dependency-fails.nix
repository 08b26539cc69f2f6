# A chain whose bottom fails (a <- b <- c <- top) beside an independent derivation: Nix
# reports each derivation left unbuilt, in the order the failure reaches it.
{ nonce }: with import ../lib.nix { inherit nonce; };
let
  a = mk { name = "dep-a"; script = "exit 1"; };
  b = mk { name = "dep-b"; script = "mkdir $out"; deps = [ a ]; };
  c = mk { name = "dep-c"; script = "mkdir $out"; deps = [ b ]; };
  ok = mk { name = "dep-ok"; script = "mkdir $out"; };
in
mk { name = "dep-top"; script = "mkdir $out"; deps = [ c ok ]; }
