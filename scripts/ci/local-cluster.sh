#!/usr/bin/env bash
# CI step "local cluster": build and start it, check the workload image's size, then run the
# README's set-up block as written (venv, install, `pytest --cluster=local`) in a fresh copy with
# a fresh venv, so the README cannot drift; its reports/ come back here.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"
ci_skip_unless "$CI_LOCAL_CLUSTER" "the local cluster needs root and this machine's pinned build"

ci_stamp "build and start the local cluster"
python -m localcluster up

ci_stamp "workload image size (at most 120 MB on the Debian base)"
python -m localcluster.build image-size --max-mb 120

ci_stamp "the README's set-up block, as written, in a fresh copy with a fresh venv"
scripts/readme-commands
