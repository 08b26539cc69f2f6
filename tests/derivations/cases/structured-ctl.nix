with import ../lib.nix;
mk { name = "structured-ctl"; __structuredAttrs = true; s = builtins.fromJSON "\"a\\u0001b\\u001fc\\u007f\""; }
