{ nonce }: with import ../lib.nix { inherit nonce; };
{
  a = mk { name = "several-a"; script = "echo a > $out"; };
  b = mk { name = "several-b"; script = "echo b > $out"; };
  c = mk { name = "several-c"; script = "echo c > $out"; };
}
