{ lib, n }:
{
  value = lib.id ⟨bad⟩(n + 1);
}
