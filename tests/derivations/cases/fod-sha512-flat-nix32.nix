with import ../lib.nix;
fod { name = "fod-sha512-flat-nix32"; outputHashMode = "flat"; outputHashAlgo = "sha512"; outputHash = "11w1pmwfdpz9pisbhp5qiv38q6dmidq2ipcqykw3p0sb6yrqcij79rwcwcjbxyzwbdal349qbxrncbk7pmd6snljrfpiwv2pljd4wcv"; }
