with import ../lib.nix;
import <nix/fetchurl.nix> { url = "https://example.com/z"; md5 = "5d41402abc4b2a76b9719d911017c592"; system = "x86_64-linux"; }
