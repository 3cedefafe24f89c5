#!/usr/bin/env bash
# image.sh: builds both targets of the Dockerfile (static and pkcs11) with the first
# container engine that answers: $CONTAINER_ENGINE if set, else docker, else podman.
# IMAGE (default signsvr) and TAG (default dev) name the images IMAGE:TAG-static and
# IMAGE:TAG-pkcs11. Extra build arguments pass through IMAGE_BUILD_ARGS, e.g.
#   IMAGE_BUILD_ARGS="--build-arg STATIC_BASE=gcr.io/distroless/static-debian12:nonroot@sha256:..."
set -euo pipefail
image=${IMAGE:-signsvr} tag=${TAG:-dev}
engine=
for e in ${CONTAINER_ENGINE:-docker podman}; do
  # A client alone is not enough (a docker CLI without a daemon): the engine must answer.
  if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then engine=$e; break; fi
done
if [ -z "$engine" ]; then
  echo "make image: no container engine answers (tried: ${CONTAINER_ENGINE:-docker podman})." >&2
  echo "  Install docker or podman (and start the docker daemon), or set CONTAINER_ENGINE." >&2
  echo "  Without one, 'go test ./deploy' still checks the Dockerfile's invariants." >&2
  exit 1
fi
cd "$(dirname "$0")/.."
for target in static pkcs11; do
  echo "make image: $engine build --target $target -t $image:$tag-$target ." >&2
  # shellcheck disable=SC2086 # IMAGE_BUILD_ARGS is a list of words on purpose
  "$engine" build ${IMAGE_BUILD_ARGS:-} --target "$target" -t "$image:$tag-$target" .
done
