with import ../lib.nix;
import <nix/fetchurl.nix> { url = "https://example.com/tool"; sha1 = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"; executable = true; }
