# `readDir`, `pathExists`, `filterSource` and `builtins.path` on a built directory.
{ nonce }:
let
  inherit (import ../builds/lib.nix { inherit nonce; }) mk;
  d = mk {
    name = "tree";
    script = ''
      mkdir -p $out/sub/deeper
      echo a > $out/file
      echo b > $out/sub/deeper/x
      ln -s file $out/link
      ln -s sub $out/sublink
    '';
  };
in
{
  top = builtins.readDir d;
  sub = builtins.readDir "${d}/sub";
  throughLink = builtins.readDir "${d}/sublink";
  exists = builtins.pathExists "${d}/sub/deeper/x";
  missing = builtins.pathExists "${d}/nothing";
  viaLink = builtins.pathExists "${d}/sublink/deeper";
  copied = builtins.path { path = "${d}/sub"; name = "copied-${nonce}"; };
  filtered = builtins.filterSource (p: t: t != "symlink") d;
}
