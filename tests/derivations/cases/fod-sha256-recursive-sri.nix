with import ../lib.nix;
fod { name = "fod-sha256-recursive-sri"; outputHashMode = "recursive"; outputHash = "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="; }
