#!/usr/bin/env bash
# Regenerates pgo/tvix-eval.profdata, the profile release builds of the evaluator are
# optimised with (see scripts/pgo-rustc). Run it after changing the evaluator's hot paths
# (eval/src/eval/, value/, builtins/), then rebuild and rerun scripts/bench.py.
#
# 1. Builds an instrumented tvix in a target dir of its own (never mixed with real builds).
# 2. Runs it over the training corpus: the nixpkgs library's own tests (lib/tests/misc.nix,
#    systems.nix and the module system's checks in modules.sh) and the language conformance
#    corpus. The benchmark workloads (../shared/workloads/bench/) are deliberately not in
#    it: the bench measures code the profile has not seen.
# 3. Merges the raw profiles into pgo/tvix-eval.profdata with the toolchain's llvm-profdata
#    (rustup's llvm-tools component, installed if missing), and records the commit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
shared=${SHARED_DIR:-$root/../shared}
[ -d "$shared/workloads/nixpkgs-lib" ] || { echo "error: $shared not found; set SHARED_DIR" >&2; exit 1; }

sysroot=$(rustc --print sysroot)
profdata=$(find "$sysroot/lib/rustlib" -name llvm-profdata -type f 2>/dev/null | head -n 1)
if [ -z "$profdata" ]; then
    rustup component add llvm-tools
    profdata=$(find "$sysroot/lib/rustlib" -name llvm-profdata -type f | head -n 1)
fi

target=${PGO_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}-pgo-train}
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT

echo "==> instrumented build ($target)"
TVIX_PGO="generate:$raw" CARGO_TARGET_DIR=$target cargo build --release --locked --bin tvix
tvix=$target/release/tvix

# Processes share four raw files, merged as they exit (modules.sh starts hundreds).
export LLVM_PROFILE_FILE=$raw/tvix-%4m.profraw
echo "==> training: nixpkgs lib tests"
TVIX=$tvix SHARED_DIR=$shared bash scripts/nixpkgs-lib-tests.sh
echo "==> training: language corpus"
# Failing cases are part of the corpus too (error paths); the count is not checked here.
python3 "$shared/tools/lang-tests" --bin "$tvix" --corpus "$shared/lang-tests" | tail -n 1 || true

echo "==> merge"
"$profdata" merge -o pgo/tvix-eval.profdata "$raw"/*.profraw
commit=$(git rev-parse --short HEAD)
dirty=
git diff --quiet HEAD -- eval/src || dirty=" (with uncommitted changes in eval/src)"
printf 'Trained on %s%s with %s.\n' "$commit" "$dirty" "$(rustc --version)" > pgo/TRAINED
ls -l pgo/
