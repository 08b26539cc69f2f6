with import ../lib.nix;
mk { name = "nulls-list"; __ignoreNulls = true; __structuredAttrs = true; l = [ null ]; s = { n = null; }; n = null; }
