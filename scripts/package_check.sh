#!/usr/bin/env bash
# Build the sdist and wheel, install the wheel into fresh virtual environments (the core
# alone, each extra, each getting-started guide's install line) outside the source tree,
# and smoke-test each: tests/packaging. scripts/test.sh runs the same tests as part of
# the suite (under CI=true they always run; elsewhere only when asked, as here).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPUP_PACKAGING=1 exec .venv/bin/python -m pytest tests/packaging -p no:cacheprovider "$@"
