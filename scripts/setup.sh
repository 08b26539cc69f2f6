#!/usr/bin/env bash
# Install what the tests need on a fresh Debian machine and make the reference
# `nix-instantiate` usable. Idempotent: when everything is already present it
# skips apt entirely, so running it at the start of every CI run is cheap.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(nix-bin runc fuse3 python3 time tmux git tar)
# One command per package, used to decide whether apt is needed at all.
COMMANDS=(nix-instantiate nix-store nix-hash runc fusermount3 python3 /usr/bin/time tmux git tar)

log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Installing and creating /nix need root; use sudo when run as a normal user.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and sudo is not available"
    SUDO=(sudo -E)
fi

missing_commands() {
    local c
    for c in "${COMMANDS[@]}"; do
        command -v "$c" >/dev/null 2>&1 || printf '%s\n' "$c"
    done
}

# Another apt/dpkg run (e.g. a background install of nix-bin, or
# unattended-upgrades) may hold the locks; wait for it instead of failing.
wait_for_apt() {
    local waited=0 limit=${APT_WAIT_SECONDS:-1200}
    while pgrep -x 'apt|apt-get|aptitude|dpkg|unattended-upgr' >/dev/null 2>&1; do
        if [ "$waited" -eq 0 ]; then log "waiting for another apt/dpkg process to finish..."; fi
        if [ "$waited" -ge "$limit" ]; then die "apt/dpkg still busy after ${limit}s"; fi
        sleep 5
        waited=$((waited + 5))
    done
}

# apt-get with a lock timeout, covering the race where another process grabs
# the lock between our check and our call; retried because `update` does not
# honour the timeout for the lists lock.
apt_get() {
    local attempt
    for attempt in 1 2 3 4 5; do
        wait_for_apt
        if "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 "$@"; then return 0; fi
        log "apt-get $1 failed (attempt $attempt), retrying"
        sleep 10
    done
    die "apt-get $* kept failing"
}

missing=$(missing_commands)
if [ -n "$missing" ]; then
    log "missing: $(paste -sd ' ' <<<"$missing"); installing ${PACKAGES[*]}"
    apt_get update
    wait_for_apt
    # A background install that was interrupted leaves dpkg half-configured,
    # which makes every later apt-get install refuse to run.
    "${SUDO[@]}" dpkg --configure -a
    apt_get install -y --no-install-recommends "${PACKAGES[@]}"
    missing=$(missing_commands)
    [ -z "$missing" ] || die "still missing after install: $(paste -sd ' ' <<<"$missing")"
else
    log "all required commands present, skipping apt"
fi

# For root, nix-instantiate opens the local store even for --eval and creates
# /nix/store and /nix/var/nix on first use, which fails if /nix cannot be
# created. Lay it out up front with the installer's modes so the first real
# evaluation does not race to create it. (Unprivileged users cannot use the
# local store at all; they need NIX_REMOTE=dummy://.)
"${SUDO[@]}" mkdir -p /nix/store /nix/var/nix/db /nix/var/nix/gcroots/per-user \
    /nix/var/nix/profiles/per-user /nix/var/nix/temproots
if getent group nixbld >/dev/null 2>&1; then
    "${SUDO[@]}" chgrp nixbld /nix/store
fi
"${SUDO[@]}" chmod 1775 /nix/store

# Prove the oracle actually evaluates, both with the local store and with the
# store-less dummy backend the differential tests and benchmarks use.
nix-instantiate --version >/dev/null || die "nix-instantiate --version failed"
check_eval() {
    local out
    out=$("$@" 2>&1) || die "'$*' failed: $out"
    [ "$out" = "2" ] || die "'$*' printed '$out', expected '2'"
}
if [ "$(id -u)" -eq 0 ]; then
    check_eval nix-instantiate --eval -E '1+1'
fi
check_eval env NIX_REMOTE=dummy:// nix-instantiate --eval --strict -E '1+1'

log "ok: $(nix-instantiate --version)"
