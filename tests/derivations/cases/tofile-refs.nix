with import ../lib.nix;
let a = builtins.toFile "a.txt" "A"; b = builtins.toFile "b.txt" "refers to ${a}"; in mk { name = "tofile-refs"; f = builtins.toFile "c.txt" "${b} and ${a} and ${../files/hello.txt}"; }
