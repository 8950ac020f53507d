#!/usr/bin/env bash
# Build an image unless one with the same inputs is already there:
#
#   scripts/build_image.sh TAG DOCKERFILE WHEELHOUSE [docker build options]...
#
# The inputs are the Dockerfile, every file of the wheelhouse (the project
# wheel included; hatchling builds it reproducibly, so unchanged sources give
# the same bytes) and the build options. Their hash is stored as a label; a
# match skips `docker build` altogether, which otherwise spends seconds just
# sending a ~300 MB context to the daemon before its layer cache answers.
#
# Context: the repository root (see .dockerignore). Uses the classic builder
# when the buildx plugin is missing (Debian's docker.io ships without it).
set -euo pipefail

[ $# -ge 3 ] || { sed -n '4p' "$0" | sed 's/^# *//' >&2; exit 2; }
tag="$1"; dockerfile="$2"; wheelhouse="$3"; shift 3
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

[ -d "$wheelhouse/project" ] || { echo "build image: $wheelhouse has no project/ (run make_wheelhouse.sh)" >&2; exit 1; }

hash="$( { sha256sum "$dockerfile"; find "$wheelhouse" -type f -print0 | sort -z | xargs -0 sha256sum; echo "$*"; } \
        | sha256sum | cut -c1-16)"
label=io.llenergymeasure.build-hash
if [ "$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$tag" 2>/dev/null)" = "$hash" ]; then
    echo "build image: $tag is up to date ($label=$hash)"
    exit 0
fi

docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
echo "build image: $tag from $dockerfile"
start=$SECONDS
docker build --file "$dockerfile" --tag "$tag" --label "$label=$hash" \
    --build-arg "WHEELHOUSE=$wheelhouse" "$@" .
# The image this tag pointed at before is now dangling; drop it (and the
# layers only it used) so repeated builds do not fill the disk.
docker image prune --force --filter "label=$label" >/dev/null
echo "build image: $tag built in $((SECONDS - start))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
