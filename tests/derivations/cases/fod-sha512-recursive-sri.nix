with import ../lib.nix;
fod { name = "fod-sha512-recursive-sri"; outputHashMode = "recursive"; outputHashAlgo = "sha512"; outputHash = "sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw=="; }
