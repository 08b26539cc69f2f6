with import ../lib.nix;
import <nix/fetchurl.nix> { url = "https://example.com/x.tar"; sha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; unpack = true; name = "src"; }
