#!/usr/bin/env bash
# Install everything the tests need, start the services, then lint, type-check and test.
# Used as-is by the README and by .ci/run. In CI (CI=true) no test may skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: oathtool (TOTP interop), xmlsec1 (SAML), chromium and firefox-esr (browser
# tests), zbar-tools (QR decoding).
need=()
command -v oathtool >/dev/null || need+=(oathtool)
command -v xmlsec1 >/dev/null || need+=(xmlsec1)
command -v chromium >/dev/null || need+=(chromium)
command -v zbarimg >/dev/null || need+=(zbar-tools)  # decodes the demo's QR codes
command -v msgfmt >/dev/null || need+=(gettext)  # checks the catalogs as Django's tooling does
command -v firefox-esr >/dev/null || need+=(firefox-esr)  # the demo journeys in Firefox
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]} (tests that need them will skip)" >&2
  fi
fi

bash scripts/services.sh

# Node packages for the OpenID provider used by the OIDC tests.
if [ -f tests/idp/oidc/package.json ] && command -v npm >/dev/null; then
  (cd tests/idp/oidc && { [ -d node_modules ] || npm install --no-audit --no-fund --silent; })
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# The benchmarks' peers (django-otp, pyinstrument): the smoke tests run every benchmark.
.venv/bin/python -m pip install -q -r benchmarks/requirements.txt

.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
# The API reference, built from the docstrings (docs/api/): a warning is an error.
.venv/bin/sphinx-build -W --keep-going -q -b html docs/api build/api
# tests/packaging builds the wheel and installs it into fresh virtual environments: it runs
# under CI=true (or STEPUP_PACKAGING=1, as scripts/package_check.sh sets) and skips otherwise.
.venv/bin/python -m pytest "$@"
