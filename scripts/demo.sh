#!/usr/bin/env bash
# Set up a virtual environment and run the stepup demo on the embedded SQLite store.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[demo]'
exec .venv/bin/stepup demo "$@"
