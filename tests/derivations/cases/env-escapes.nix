with import ../lib.nix;
mk { name = "env-escapes"; s = "quote\" backslash\\ nl\n tab\t cr\r dollar\${x} unié☃"; }
