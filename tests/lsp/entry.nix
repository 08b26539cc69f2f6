{ lib }:
import ./used.nix {
  inherit lib;
  n = "x";
}
