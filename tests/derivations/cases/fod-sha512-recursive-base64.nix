with import ../lib.nix;
fod { name = "fod-sha512-recursive-base64"; outputHashMode = "recursive"; outputHashAlgo = "sha512"; outputHash = "m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw=="; }
