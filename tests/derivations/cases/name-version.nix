with import ../lib.nix;
mk { name = "foo-1.2.3_rc+git.=x?"; }
