with import ../lib.nix;
mk { name = "env-odd-keys"; "foo bar" = "x"; "with\"quote" = 1; "back\\slash" = "\\"; "" = "empty key"; "nl\nkey" = "v"; }
