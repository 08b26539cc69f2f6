with import ../lib.nix;
mk { name = "structured-values"; __structuredAttrs = true; i = 1; f = 2.5; b = false; n = null; l = [ 1 "two" [ 3 ] { x = 4; } ]; a = { nested.deep = "yes"; e = { }; }; s = "quote\" nl\n unié"; }
