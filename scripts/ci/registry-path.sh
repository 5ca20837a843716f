#!/usr/bin/env bash
# CI step "registry path": the Raspberry Pi path, an existing cluster whose nodes pull the images
# from a registry. Here the registry (distribution, built from its Go module) sits on the kind
# network and the workload images are pushed to it with scripts/build-images.sh; the kind cluster
# is then used as any existing cluster would be, and the registry's log shows the nodes' pulls.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"
ci_skip_unless "$CI_REGISTRY_PATH" "the registry runs on the private engine's kind network"
ci_kind_env

ci_stamp "existing cluster + registry: scripts/build-images.sh --push, then pytest --cluster=existing"
registry=$(python -m localcluster engine registry)
# docker buildx, built from its Go module (no package has it here), as the engine's CLI plugin.
DOCKER_CONFIG="$PWD/$CI_LOGS/docker-config"
export DOCKER_CONFIG
mkdir -p "$DOCKER_CONFIG/cli-plugins" && rm -f "$DOCKER_CONFIG/cli-plugins/docker-buildx"
echo '{}' >"$DOCKER_CONFIG/config.json"   # buildah reads it too, and wants it to exist
ln -s "$(scripts/go-tool.sh buildx)" "$DOCKER_CONFIG/cli-plugins/docker-buildx"
# No base image can be pulled: the Debian Python base made offline, from the engine's own store
# (PLATFORMS= builds for the native platform, which is when Docker 20.10 uses a local base), and
# the RUN steps on the host network (the engine has no default bridge).
base_image=$(python -m localcluster engine load-base)
PLATFORMS='' BUILD_NETWORK=host CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
  BASE_IMAGE="$base_image" scripts/build-images.sh "$registry" --push
kind get kubeconfig --name kube-alive >"$CI_LOGS/kind.kubeconfig"
# The behaviours declared for this path (`on_registry_path` in suite/behaviours/).
mapfile -t registry_path < <(python -m suite.behaviours --registry-path)
pytest --cluster=existing --kubeconfig "$CI_LOGS/kind.kubeconfig" --image-registry "$registry" \
  --report-dir=reports/existing "${registry_path[@]}"
ci_stamp "the nodes pulled the images from the registry (its access log):"
python -m localcluster engine registry-pulls
