with import ../lib.nix;
fod { name = "fod-sha256-flat-sri"; outputHashMode = "flat"; outputHash = "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="; }
