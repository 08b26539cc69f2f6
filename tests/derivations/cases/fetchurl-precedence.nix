with import ../lib.nix;
# Several legacy hashes: sha1 wins over sha256.
import <nix/fetchurl.nix> { url = "https://example.com/both"; sha1 = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"; sha256 = "094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic"; name = "both-hashes"; }
