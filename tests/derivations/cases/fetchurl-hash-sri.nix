with import ../lib.nix;
import <nix/fetchurl.nix> { url = "https://example.com/dl/file.tar.gz"; hash = "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="; }
