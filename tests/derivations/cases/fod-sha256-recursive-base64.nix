with import ../lib.nix;
fod { name = "fod-sha256-recursive-base64"; outputHashMode = "recursive"; outputHashAlgo = "sha256"; outputHash = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="; }
