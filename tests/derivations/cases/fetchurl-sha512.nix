with import ../lib.nix;
import <nix/fetchurl.nix> { url = "https://example.com/y"; sha512 = "11w1pmwfdpz9pisbhp5qiv38q6dmidq2ipcqykw3p0sb6yrqcij79rwcwcjbxyzwbdal349qbxrncbk7pmd6snljrfpiwv2pljd4wcv"; }
