#!/usr/bin/env bash
# CI step "pytest --cluster=kind": every e2e scenario on 1 control plane + 2 workers. Only the
# e2e tests: the unit tests ran in the lint-type-unit step, and each test runs once per job.
# CI=true turns every skipped scenario into a failure.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"
ci_kind_env

args=(--cluster=kind -m e2e --report-dir=reports/kind)
if [ "$CI_KIND_KEEP" = 1 ]; then
  args+=(--keep-cluster)
fi
ci_stamp "kind: pytest ${args[*]}${CI_KIND_NODE_IMAGE:+ (node image $CI_KIND_NODE_IMAGE)}"
pytest "${args[@]}"
