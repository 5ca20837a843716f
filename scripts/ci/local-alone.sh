#!/usr/bin/env bash
# CI step "the tests that need the cluster alone": the README's command runs two tests at a time
# (-n 2), which deselects the tests that restart the API server; they run here, on their own.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"
ci_skip_unless "$CI_LOCAL_CLUSTER" "the local cluster needs root and this machine's pinned build"

ci_stamp "the tests that need the cluster alone: pytest --cluster=local -m alone"
pytest --cluster=local -m alone --report-dir=reports/alone -p no:cacheprovider
