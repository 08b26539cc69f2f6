{ nonce }: with import ../lib.nix { inherit nonce; };
let src = builtins.toFile "source-${nonce}" "text from a source";
in mk { name = "input-source"; script = "cat ${src} > $out; echo ${src} >> $out"; }
