#!/usr/bin/env bash
# CI step "images": the workload images, tagged by content as the suite names them
# (suite/images.py), in the engine kind runs on; `--cluster=kind` copies them into the nodes.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"

if [ "$CI_PRIVATE_ENGINE" = 1 ]; then
  # No base image can be pulled here: buildah builds them (as for the local cluster), the
  # private engine loads them.
  ci_stamp "kind: the workload images, loaded into the private engine"
  ci_kind_env
  python -m localcluster engine load-workloads
else
  ci_stamp "kind: the workload images, built for this runner's architecture"
  for version in v1 v2; do
    tag="$(python -I suite/images.py tag "$version")"
    docker build -f workloads/Dockerfile --build-arg "VERSION=$version" \
      -t "localhost/kube-alive/workloads:$tag" -t "localhost/kube-alive/workloads:$version" .
  done
  docker image ls localhost/kube-alive/workloads
fi
