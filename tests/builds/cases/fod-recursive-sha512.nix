{ nonce }: with import ../lib.nix { inherit nonce; };
mk {
  name = "fod-recursive-sha512";
  outputHashMode = "recursive";
  outputHashAlgo = "sha512";
  outputHash = "2y1xgrki5j2z8yl0dsayjp7f3sz9pwcd019xj5ix69190iivmlgakbdfabwry0yiw0w4sb8y5zmlc3aq3gwzm06bjl8jxrn36gqry4s";
  script = ''
    mkdir -p $out/sub
    echo 'constant recursive content' > $out/sub/file
    printf '#!/bin/sh\necho x\n' > $out/run
    chmod +x $out/run
    ln -s sub/file $out/link
  '';
}
