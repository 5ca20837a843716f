#!/usr/bin/env bash
# CI step "lint, types, unit tests": `tox -e lint,type,unit` as an ordinary user, as GitHub's
# runners and developers run it. As root (this project's CI machine) it runs itself again through
# scripts/as-user.sh: a non-root user, a fresh copy of the checkout, a fresh .venv.
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"

if [ "$(id -u)" -eq 0 ]; then
  exec scripts/as-user.sh scripts/ci/lint-type-unit.sh
fi
if [ ! -x .venv/bin/tox ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q -c "$CI_CONSTRAINTS" -e '.[dev]'
fi
PATH="$PWD/.venv/bin:$PATH" tox -e lint,type,unit
