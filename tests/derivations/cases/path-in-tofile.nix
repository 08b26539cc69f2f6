with import ../lib.nix;
let p = builtins.path { path = ../files/dir; name = "d"; }; in mk { name = "path-in-tofile"; f = builtins.toFile "ref" "${p}"; }
