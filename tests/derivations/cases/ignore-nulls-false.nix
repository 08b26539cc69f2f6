with import ../lib.nix;
mk { name = "ignore-nulls-false"; __ignoreNulls = false; n = null; }
