#!/usr/bin/env bash
# Lints the GitHub workflows with actionlint (built from its Go module by scripts/go-tool.sh,
# cached) and the shell scripts in scripts/ with shellcheck. actionlint also runs shellcheck on
# every `run:` block, so shellcheck must be installed: without it that part would be skipped
# silently, and this script refuses to pass on a weaker check.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v shellcheck >/dev/null 2>&1; then
  echo "$0: shellcheck is missing (Debian/Ubuntu: apt-get install shellcheck)" >&2
  exit 1
fi
actionlint="$(scripts/go-tool.sh actionlint)"
"$actionlint" -no-color -shellcheck=shellcheck -pyflakes= .github/workflows/*.yml
# -x: the CI steps source scripts/ci/env, checked with them
shellcheck -x scripts/*.sh scripts/ci/*.sh scripts/ci/env localcluster/setup.sh .ci/run
echo "lint-workflows: $("$actionlint" -version | head -n1): .github/workflows clean; shellcheck $(shellcheck --version | sed -n 's/^version: //p'): scripts/*.sh, scripts/ci/ clean"
