{ config, lib, pkgs, ... }:
{
  x = lib.⟨up⟩toUpper "a";
  y = lib.⟨dot⟩toLower "B";
}
