{ nonce }: with import ../lib.nix { inherit nonce; };
mk { name = "hostname"; script = "hostname > $out; cat /proc/sys/kernel/domainname >> $out"; }
