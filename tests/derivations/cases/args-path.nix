with import ../lib.nix;
mk { name = "args-path"; args = [ ../files/hello.txt "${../files/dir}" ]; }
