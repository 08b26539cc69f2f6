with import ../lib.nix;
mk { name = "source-interp"; src = "${../files/hello.txt}"; both = "${../files/dir}/sub:${../files/foo+bar-1.0_x.txt}"; }
