with import ../lib.nix;
mk { name = "path-symlink"; l = ../files/hello-link; t = ../files/tree; }
