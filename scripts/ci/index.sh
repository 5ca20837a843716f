#!/usr/bin/env bash
# CI step "three-platform index": one index of linux/amd64, linux/arm64 and linux/arm/v7 (what
# build-images.sh --push publishes with a multi-platform buildx builder, which cannot run here):
# the three images built with buildah, assembled with `buildah manifest`, pushed to the registry
# under a tag of their own, read back over the registry API, and each platform's image pulled by
# its digest and run (arm64 and arm/v7 under qemu): its /healthz must name its own machine.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"
ci_skip_unless "$CI_REGISTRY_PATH" "the registry runs on the private engine's kind network"
ci_kind_env

registry=$(python -m localcluster engine registry)   # the registry-path step's, reused
ci_stamp "the three-platform index: python -m localcluster.multiarch check-index $registry"
python -m localcluster.multiarch check-index "$registry"
