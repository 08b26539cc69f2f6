{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "fod-recursive";
  outputHashMode = "recursive";
  outputHashAlgo = "sha256";
  outputHash = "1fnv0j5frb7534q4k446gri0q5abw728rxkamq3dwxmcmdziqgri";
  script = ''
    mkdir -p $out/sub
    echo 'constant recursive content' > $out/sub/file
    printf '#!/bin/sh\necho x\n' > $out/run
    chmod +x $out/run
    ln -s sub/file $out/link
  '';
}
