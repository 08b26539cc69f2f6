with import ../lib.nix;
mk { name = "impure"; impureEnvVars = [ "http_proxy" "HOME" ]; allowedReferences = [ ]; preferLocalBuild = true; }
