#!/usr/bin/env bash
# Builds the oauth-sidecar container image with docker (when its engine answers) or buildah.
#
#   deploy/build-image.sh [TAG]        TAG defaults to oauth-sidecar:<package.json version>
#
# Works from any directory: the build context is the repository root.
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

# The canonical npm formatting of package.json: `  "version": "x.y.z",` (no node needed on the build host).
version=""
while IFS= read -r line; do
  if [[ $line =~ ^[[:space:]]*\"version\":[[:space:]]*\"([^\"]+)\" ]]; then
    version=${BASH_REMATCH[1]}
    break
  fi
done < package.json
if [[ -z $version ]]; then
  echo "build-image.sh: cannot read the version from package.json" >&2
  exit 1
fi

tag=${1:-oauth-sidecar:${version}}
revision=unknown
if command -v git >/dev/null 2>&1; then
  revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
fi
build_args=(--file Dockerfile --tag "$tag" --build-arg "VERSION=${version}" --build-arg "REVISION=${revision}")

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo "build-image.sh: building ${tag} with docker"
  exec docker build "${build_args[@]}" .
fi

if command -v buildah >/dev/null 2>&1; then
  echo "build-image.sh: building ${tag} with buildah"
  # --format docker: the OCI image format has no HEALTHCHECK, and buildah would drop it with a warning.
  exec buildah bud --format docker "${build_args[@]}" .
fi

if command -v docker >/dev/null 2>&1; then
  echo "build-image.sh: cannot build: the docker CLI is installed but no Docker engine answers ('docker info' failed), and buildah is not installed. Start the Docker engine or install buildah." >&2
else
  echo "build-image.sh: cannot build: neither docker nor buildah is installed. Install one of them (https://docs.docker.com/engine/install/ or https://github.com/containers/buildah/blob/main/install.md)." >&2
fi
exit 1
