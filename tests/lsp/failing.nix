{ lib }:
{
  fine = lib.id 1;
  broken = 1 + ⟨bad⟩"two";
}
