#!/usr/bin/env bash
# Create the local base image llenergymeasure/base:bookworm (Debian 12 +
# Python 3.11) when it is missing.
#
# Why: these machines cannot pull from any container registry, so the CPU image
# cannot start FROM an official image. debootstrap builds a Debian root file
# system from the same Debian mirror the host's apt already uses, and
# `docker import` turns it into an image; `FROM` a local image needs no registry.
#
# python3, python3-venv and ca-certificates are installed at debootstrap time
# rather than by apt-get in the Dockerfile: measured on a 2-core machine it is
# as fast (58 s vs 40 s + 15 s) and the image builds then need no network from
# inside a container.
#
# Env: BASE_IMAGE_TAG (default llenergymeasure/base:bookworm),
#      DEBIAN_MIRROR (default: read from the host's apt sources).
set -euo pipefail

tag="${BASE_IMAGE_TAG:-llenergymeasure/base:bookworm}"
suite=bookworm

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image: $tag already present"
    exit 0
fi

# The first "deb" source for $suite in apt's configuration, in either the
# one-line format (sources.list, *.list) or the deb822 format (*.sources).
host_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [options] URI suite components...
        sed -E 's/\[[^]]*\]//' "$f" | awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # One stanza per blank-line separated paragraph.
        awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" }
            {
                types = uris = suites = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Types:/)  types  = " " substr($i, 7) " "
                    if ($i ~ /^URIs:/)   uris   = substr($i, 6)
                    if ($i ~ /^Suites:/) suites = " " substr($i, 8) " "
                }
                if (types ~ / deb / && suites ~ (" " s " ")) { split(uris, u, " "); print u[1]; exit }
            }' "$f"
    done
}

mirror="${DEBIAN_MIRROR:-$(host_mirror | head -n 1)}"
if [ -z "$mirror" ]; then
    echo "base image: no '$suite' source found in /etc/apt; set DEBIAN_MIRROR" >&2
    exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

rootfs="$(mktemp -d /var/tmp/llem-rootfs.XXXXXX)"
# --one-file-system: never follow a /proc or /sys left mounted by a failed run.
trap 'rm -rf --one-file-system "$rootfs"' EXIT

echo "base image: debootstrap $suite from $mirror"
start=$SECONDS
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 20 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"

# Downloaded .debs and package lists are ~95 MB that no image needs.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

# An imported image has no config: set PATH, or a Dockerfile's
# `ENV PATH=/opt/x/bin:${PATH}` would drop /usr/bin.
tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$tag" >/dev/null
echo "base image: $tag created in $((SECONDS - start))s"
