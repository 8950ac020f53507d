#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`.
#
# The CI and development machines ship only the docker client; nothing started
# by hand survives into CI, so this script installs Debian's engine and starts
# it detached. Idempotent: when `docker info` already works it does nothing.
#
# Env: DOCKERD_LOG (default /tmp/dockerd.log), DOCKERD_WAIT_S (default 60).
set -euo pipefail

log="${DOCKERD_LOG:-/tmp/dockerd.log}"
wait_s="${DOCKERD_WAIT_S:-60}"

if docker info >/dev/null 2>&1; then
    echo "docker engine: already running"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "docker engine: not running, and installing/starting it needs root" >&2
    exit 1
fi

# debootstrap comes along: scripts/bootstrap_base_image.sh needs it, and one
# apt-get run is cheaper than two.
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
    echo "docker engine: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# No init system on these machines (no systemd in the CI sandbox), so start the
# daemon ourselves: setsid detaches it from this shell's session so it outlives
# the CI step; stdin closed so nothing can block on it.
if ! pidof dockerd >/dev/null 2>&1; then
    echo "docker engine: starting dockerd (log: $log)"
    setsid dockerd >"$log" 2>&1 </dev/null &
fi

for ((i = 0; i < wait_s; i++)); do
    if docker info >/dev/null 2>&1; then
        echo "docker engine: ready after ${i}s"
        exit 0
    fi
    sleep 1
done

echo "docker engine: dockerd did not answer within ${wait_s}s; last lines of $log:" >&2
tail -n 20 "$log" >&2 || true
exit 1
