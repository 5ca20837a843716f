#!/usr/bin/env bash
# CI step "fault matrix": each fault must fail the scenarios it targets in their behaviour
# assertion, naming the broken part; each healthy variant's scenarios must pass; the faults'
# scenarios must pass again once they are cleared. Then the README run's report and the matrix's
# page are checked in a real browser, whatever the matrix said (a failed matrix's page is the
# evidence), and the step fails with the matrix's status.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"
ci_skip_unless "$CI_LOCAL_CLUSTER" "the local cluster needs root and this machine's pinned build"

ci_stamp "the fault matrix (its page: reports/fault-matrix.html)"
matrix_status=0
python -m suite.tools.faultmatrix || matrix_status=$?

ci_stamp "the report of the README's run and the fault matrix's page, in a real browser"
KUBE_ALIVE_REPORT_HTML=reports/report.html KUBE_ALIVE_FAULT_MATRIX_HTML=reports/fault-matrix.html \
  pytest suite/tests/test_report_browser.py --report-dir=reports/browser -p no:cacheprovider -q
[ "$matrix_status" -eq 0 ] || { ci_stamp "the fault matrix failed (exit $matrix_status)"; exit "$matrix_status"; }
