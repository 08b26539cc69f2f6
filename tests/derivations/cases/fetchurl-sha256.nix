with import ../lib.nix;
import <nix/fetchurl.nix> { url = "https://example.com/x"; sha256 = "094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic"; }
