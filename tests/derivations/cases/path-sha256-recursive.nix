with import ../lib.nix;
mk { name = "path-sha256-rec"; src = builtins.path { path = ../files/tree; name = "tree"; sha256 = "0fv5i0n2f0d3vmqn6xmfilx24ryznqdi2csmvlagzpkap1ay53s6"; }; }
