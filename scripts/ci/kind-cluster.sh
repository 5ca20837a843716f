#!/usr/bin/env bash
# CI step "kind": what `pytest --cluster=kind` needs before it runs. Here: the local cluster
# stopped (kind runs next, alone on the CPU), the offline node image (cached by content), a
# private Docker engine with the node image loaded. On a runner: its Docker and kind's release
# binary, shown.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"

if [ "$CI_LOCAL_CLUSTER" = 1 ]; then
  ci_stamp "stopping the local cluster (kind runs next, alone on the CPU)"
  python -m localcluster down
fi
if [ "$CI_PRIVATE_ENGINE" = 1 ]; then
  ci_stamp "kind: the offline node image (cached by content)"
  python -m localcluster kind-node-image
  ci_stamp "kind: a private Docker engine; the node image loaded into it"
  eval "$(python -m localcluster engine up)"
  python -m localcluster kind-node-image --load
fi
ci_kind_env
ci_stamp "kind: $(kind version); Docker $(docker version --format '{{.Server.Version}}')"
