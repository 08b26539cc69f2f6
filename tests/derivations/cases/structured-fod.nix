with import ../lib.nix;
fod { name = "structured-fod"; __structuredAttrs = true; outputHashAlgo = "sha256"; outputHash = "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="; outputHashMode = "recursive"; }
