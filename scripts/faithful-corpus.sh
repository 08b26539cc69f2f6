#!/usr/bin/env bash
# faithful-corpus.sh CORPUS DEST: copy the language corpus (the folder holding
# lang/) to DEST with its symlinks put back. The shared copy lost them: each is
# a plain file holding the link's target, so the symlink cases fail there for
# every implementation, the reference included. Entries that already are
# symlinks are left as they are.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 CORPUS DEST" >&2; exit 2; }
corpus=$1 dest=$2
[ -d "$corpus/lang" ] || { echo "faithful-corpus: no lang/ in '$corpus'" >&2; exit 1; }

# The symlinks of the reference's corpus, relative to lang/.
SYMLINKS=(readDir/ldir readDir/linked symlink-resolution/broken symlink-resolution/foo/overlays)

mkdir -p "$dest"
cp -R --no-preserve=mode "$corpus/lang" "$dest/"
chmod -R u+w "$dest/lang"
for link in "${SYMLINKS[@]}"; do
    at=$dest/lang/$link
    if [ -f "$at" ] && [ ! -L "$at" ]; then
        target=$(cat "$at")
        rm -f "$at"
        ln -s "$target" "$at"
    fi
done
