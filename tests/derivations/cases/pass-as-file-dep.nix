with import ../lib.nix;
let a = leaf "a"; in mk { name = "pass-as-file-dep"; passAsFile = [ "script" ]; script = "run ${a}"; }
