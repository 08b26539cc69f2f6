{ nonce }: with import ../lib.nix { inherit nonce; };
# The builder does not exist in the sandbox.
mk { name = "no-builder"; builder = "/bin/sh-nonexistent"; script = "x"; }
