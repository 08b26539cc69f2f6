with import ../lib.nix;
let a = leaf "a"; in mk { name = "discard-ctx"; p = builtins.unsafeDiscardStringContext "${a}"; }
