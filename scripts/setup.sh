#!/usr/bin/env bash
# Take a fresh Debian machine to one where every test runs: system packages,
# the reference Nix configured as an installer would (so it can serve as the
# oracle for evaluations *and* sandboxed builds as root), and the static
# busybox tree that test builds import. Idempotent and quick when everything is
# already in place: apt runs only when a command is missing, and files are
# rewritten only when their contents differ.
#
# What it changes on the machine:
#   - Debian packages (PACKAGES below);
#   - /nix (store and state directories, as Nix's installer lays them out);
#   - a block between "# BEGIN tvix setup" and "# END tvix setup" in
#     /etc/nix/nix.conf (build-users-group, sandbox, sandbox-fallback);
#   - /var/lib/tvix-tests/busybox (bin/busybox, bin/sh -> busybox).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# nix-bin: the reference implementation. runc: the builder's OCI runtime.
# fuse3: `tvix store mount`. busybox-static: the only tools a test build can
# import. curl: HTTP checks against `tvix store serve`. postgresql: the
# metadata store of the scale-out tests. tmux: REPL and dashboard tests.
PACKAGES=(nix-bin runc fuse3 busybox-static curl postgresql python3 time tmux git tar xz-utils zstd bzip2)
# One command per package, used to decide whether apt is needed at all.
COMMANDS=(nix-instantiate nix-build nix-store nix-hash runc fusermount3 /bin/busybox curl
          /usr/lib/postgresql/15/bin/postgres python3 /usr/bin/time tmux git tar xz zstd bzip2)

# Where test builds find busybox laid out as a store path's contents.
BUSYBOX_TREE=/var/lib/tvix-tests/busybox

log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Installing, /nix and /etc/nix need root; use sudo when run as a normal user.
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
    # policy-rc.d 101: packages (postgresql) must not start services here;
    # tests start their own servers on loopback and stop them.
    policy_rc=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "$policy_rc" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy_rc" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy_rc"
        own_policy=1
    fi
    apt_get install -y --no-install-recommends "${PACKAGES[@]}"
    if [ "$own_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy_rc"; fi
    missing=$(missing_commands)
    [ -z "$missing" ] || die "still missing after install: $(paste -sd ' ' <<<"$missing")"
else
    log "all required commands present, skipping apt"
fi

# Write FILE (as root) only when its contents differ, so a second run changes nothing.
install_if_changed() {
    local file=$1 content=$2
    if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then return 0; fi
    "${SUDO[@]}" mkdir -p "$(dirname "$file")"
    printf '%s\n' "$content" | "${SUDO[@]}" tee "$file.tvix-new" >/dev/null
    "${SUDO[@]}" mv "$file.tvix-new" "$file"
    log "wrote $file"
}

# The reference Nix, configured in this one place. Debian's nix-bin defaults to
# `build-users-group = nixbld` but creates neither the group nor its users, so
# every command warns and root cannot build. As root we build without build
# users (Nix then runs the builder as uid 1000 in a user namespace, the same
# sandbox the builder tests compare with), always sandboxed, and never falling
# back to an unsandboxed build: the oracle must not silently build differently.
NIX_CONF=/etc/nix/nix.conf
NIX_SETTINGS='# BEGIN tvix setup (scripts/setup.sh manages this block)
build-users-group =
sandbox = true
sandbox-fallback = false
# END tvix setup'
current_conf=""
if [ -f "$NIX_CONF" ]; then current_conf=$(cat "$NIX_CONF"); fi
# Keep whatever else the file holds; replace only our block.
other_lines=$(printf '%s\n' "$current_conf" |
    sed '/^# BEGIN tvix setup/,/^# END tvix setup/d' |
    grep -Ev '^[[:space:]]*(build-users-group|sandbox|sandbox-fallback)[[:space:]]*=' || true)
if [ -n "$other_lines" ]; then
    install_if_changed "$NIX_CONF" "$other_lines
$NIX_SETTINGS"
else
    install_if_changed "$NIX_CONF" "$NIX_SETTINGS"
fi

# For root, nix-instantiate opens the local store even for --eval and creates
# /nix/store and /nix/var/nix on first use, which fails if /nix cannot be
# created. Lay it out up front with the installer's modes so the first real
# evaluation does not race to create it. (Unprivileged users cannot use the
# local store at all; they need NIX_REMOTE=dummy://.)
"${SUDO[@]}" mkdir -p /nix/store /nix/var/nix/db /nix/var/nix/gcroots/per-user \
    /nix/var/nix/profiles/per-user /nix/var/nix/temproots
"${SUDO[@]}" chmod 1775 /nix/store

# Busybox as a store path's contents: busybox picks its applet from argv[0],
# and the builder's argv[0] is the base name of `${busybox}/bin/sh`.
if ! cmp -s /bin/busybox "$BUSYBOX_TREE/bin/busybox" ||
    [ "$(readlink "$BUSYBOX_TREE/bin/sh" 2>/dev/null)" != busybox ]; then
    "${SUDO[@]}" rm -rf "$BUSYBOX_TREE"
    "${SUDO[@]}" mkdir -p "$BUSYBOX_TREE/bin"
    "${SUDO[@]}" cp /bin/busybox "$BUSYBOX_TREE/bin/busybox"
    "${SUDO[@]}" chmod 555 "$BUSYBOX_TREE/bin/busybox"
    "${SUDO[@]}" ln -s busybox "$BUSYBOX_TREE/bin/sh"
    log "laid out $BUSYBOX_TREE"
fi

# moto_server (PyPI's moto[server]): the S3-compatible server of the scale-out
# store tests (tests/store_s3.rs), in a virtualenv of its own, since Debian's
# python refuses pip installs into the system. The tests look for it on PATH,
# then here.
MOTO_VENV=/var/lib/tvix-tests/moto
if ! command -v moto_server >/dev/null 2>&1 && [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        "${SUDO[@]}" apt-get install -y python3-venv >/dev/null || die "cannot install python3-venv"
    fi
    "${SUDO[@]}" python3 -m venv "$MOTO_VENV"
    "${SUDO[@]}" "$MOTO_VENV/bin/pip" install --quiet 'moto[server]' || die "cannot install moto[server]"
    log "installed moto_server in $MOTO_VENV"
fi

# Prove the oracle actually evaluates, with the local store and with the
# store-less dummy backend the differential tests and benchmarks use. Only
# stdout is compared: a warning on stderr is shown, not mistaken for a result.
nix-instantiate --version >/dev/null || die "nix-instantiate --version failed"
check_eval() {
    local out err
    err=$(mktemp)
    out=$("$@" 2>"$err") || { log "$(cat "$err")"; rm -f "$err"; die "'$*' failed"; }
    if [ -s "$err" ]; then log "'$*' said on stderr: $(cat "$err")"; fi
    rm -f "$err"
    [ "$out" = "2" ] || die "'$*' printed '$out', expected '2'"
}
if [ "$(id -u)" -eq 0 ]; then
    check_eval nix-instantiate --eval -E '1+1'
fi
check_eval env NIX_REMOTE=dummy:// nix-instantiate --eval --strict -E '1+1'

log "ok: $(nix-instantiate --version)"
