with import ../lib.nix;
mk { name = "ignore-nulls"; __ignoreNulls = true; n = null; m = "kept"; l = [ null ]; }
