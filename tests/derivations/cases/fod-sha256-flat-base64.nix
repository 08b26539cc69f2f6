with import ../lib.nix;
fod { name = "fod-sha256-flat-base64"; outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="; }
