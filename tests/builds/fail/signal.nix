{ nonce }: with import ../lib.nix { inherit nonce; };
# The builder is PID 1 of its PID namespace: it cannot kill itself with SIGKILL, so it
# exits normally without its output.
mk { name = "signal"; script = "echo dying; kill -9 $$; echo survived"; }
