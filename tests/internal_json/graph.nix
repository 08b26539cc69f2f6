# A small graph for the internal-json tests: `a` logs two lines around a phase change (a
# builder's `@nix {"action":"setPhase"}` line), `b` needs `a`; `bad` fails after a line of
# log, so `c` (which needs it) and `top` are not built. Every name carries the run's nonce.
{ nonce }: with import ../builds/lib.nix { inherit nonce; };
let
  a = mk { name = "ij-a"; script = ''
    echo hello from a
    echo '@nix {"action":"setPhase","phase":"buildPhase"}'
    echo second line
    mkdir $out
  ''; };
  bad = mk { name = "ij-bad"; script = "echo about to fail; exit 1"; };
  b = mk { name = "ij-b"; script = "echo b needs ${a}; mkdir $out"; };
  c = mk { name = "ij-c"; script = "mkdir $out"; deps = [ bad ]; };
in
mk { name = "ij-top"; script = "mkdir $out"; deps = [ b c ]; }
