#!/usr/bin/env bash
# Runs the nixpkgs library's own tests with tvix standing in for nix-instantiate:
#   lib/tests/misc.nix and lib/tests/systems.nix must evaluate to [ ], and
#   lib/tests/modules.sh must pass at least MIN_MODULE_CHECKS of its checks.
# The workload is read-only shared material; modules.sh runs on a scratch copy because it
# expects to be able to cd around its own tree.
set -euo pipefail

MIN_MODULE_CHECKS=${MIN_MODULE_CHECKS:-407}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SHARED_DIR:-$root/../shared}
lib=$shared/workloads/nixpkgs-lib
tvix=${TVIX:-${CARGO_TARGET_DIR:-$root/target}/release/tvix}
[ -x "$tvix" ] || { echo "error: $tvix not built (cargo build --release)" >&2; exit 1; }
[ -d "$lib/lib" ] || { echo "error: $lib/lib not found; set SHARED_DIR" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/bin"
ln -s "$tvix" "$scratch/bin/nix-instantiate"
export PATH="$scratch/bin:$PATH"
# Evaluation writes sources and toFile results to a store of its own for this run.
export TVIX_STORE="local://$scratch/store"

status=0
for t in misc systems; do
    out=$("$tvix" eval --strict "$lib/lib/tests/$t.nix" 2>"$scratch/$t.err") || cat "$scratch/$t.err"
    if [ "$out" = "[ ]" ]; then
        echo "lib/tests/$t.nix: [ ] (pass)"
    else
        echo "lib/tests/$t.nix: FAILED"
        printf '%s\n' "$out" | head -40
        status=1
    fi
done

cp -r "$lib" "$scratch/nixpkgs-lib"
chmod -R u+w "$scratch/nixpkgs-lib"
log=$scratch/modules.log
bash "$scratch/nixpkgs-lib/lib/tests/modules.sh" >"$log" 2>&1 || true
passed=$(sed -n 's/^\([0-9]*\) Pass$/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/^\([0-9]*\) Fail$/\1/p' "$log" | tail -n 1)
echo "lib/tests/modules.sh: ${passed:-0} checks passed, ${failed:-?} failed (need $MIN_MODULE_CHECKS)"
if [ "${passed:-0}" -lt "$MIN_MODULE_CHECKS" ]; then
    grep -A12 "TEST FAILED" "$log" | head -60 || tail -40 "$log"
    status=1
fi
exit $status
