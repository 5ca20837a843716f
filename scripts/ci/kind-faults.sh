#!/usr/bin/env bash
# CI step "kind faults": the fault matrix's faults that need several nodes. One worker broken,
# the others healthy; the scenario must fail naming that node's part, and pass again once the
# worker is restored.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"
ci_skip_unless "$CI_KIND_FAULTS" "the one-node faults run on this project's CI machine"
ci_kind_env

ci_stamp "kind: the fault matrix's one-node faults (its page: reports/kind/fault-matrix.html)"
python -m suite.tools.faultmatrix --cluster=kind --report-dir=reports/kind
