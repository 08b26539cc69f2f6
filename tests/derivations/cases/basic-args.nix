with import ../lib.nix;
mk { name = "basic-args"; args = [ "-c" "echo hi > $out" "" "with space" ]; }
