#!/usr/bin/env bash
# Run the stepup demo from this checkout, in .venv, on the embedded SQLite store.
#
#   bash scripts/demo.sh [--with-oidc] [stepup demo options: --port, --db, --reset, ...]
#
# stepup-auth[demo] is installed into .venv only when it is missing or pyproject.toml
# changed since this script last installed it, so later starts are quick and work offline.
# --with-oidc also starts the OpenID provider the tests use (tests/idp/oidc, Node.js) on
# a free loopback port, configures the demo for it, and stops it when the demo stops.
set -euo pipefail
cd "$(dirname "$0")/.."

with_oidc=0
args=()
host=127.0.0.1
port=8000
while [ $# -gt 0 ]; do
  case "$1" in
    --with-oidc) with_oidc=1 ;;
    --host) host="${2:?--host needs a value}"; args+=("$1" "$2"); shift ;;
    --host=*) host="${1#--host=}"; args+=("$1") ;;
    --port) port="${2:?--port needs a value}"; args+=("$1" "$2"); shift ;;
    --port=*) port="${1#--port=}"; args+=("$1") ;;
    *) args+=("$1") ;;
  esac
  shift
done

extras=demo
modules="stepup.demo, stepup.cli, uvicorn, sqlalchemy, starlette, authlib"
if [ "$with_oidc" = 1 ]; then
  extras=demo,oidc
  modules="$modules, httpx, joserfc"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.stepup-demo-installed"
wanted="$(sha256sum pyproject.toml | cut -d" " -f1)"
installed() {
  # This checkout's stepup (an editable install), with everything the demo imports.
  .venv/bin/python - "$modules" <<'PY' 2>/dev/null
import importlib, pathlib, sys
for name in sys.argv[1].split(", "):
    importlib.import_module(name)
import stepup
sys.exit(0 if pathlib.Path(stepup.__file__).resolve().is_relative_to(pathlib.Path("src").resolve()) else 1)
PY
}
if ! installed || { [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$wanted" ]; }; then
  echo "demo.sh: installing stepup-auth[$extras] into .venv" >&2
  .venv/bin/python -m pip install -q -e ".[$extras]"
fi
echo "$wanted" > "$stamp"

if [ "$with_oidc" = 0 ]; then
  exec .venv/bin/python -c 'import sys; from stepup.cli import main; sys.exit(main())' demo "${args[@]}"
fi

# The test OpenID provider ---------------------------------------------------------
provider_dir=tests/idp/oidc
command -v node >/dev/null || { echo "demo.sh: --with-oidc needs Node.js 20.19 or later (node)" >&2; exit 2; }
if [ ! -d "$provider_dir/node_modules/oidc-provider" ]; then
  echo "demo.sh: installing oidc-provider (npm) into $provider_dir" >&2
  (cd "$provider_dir" && npm install --no-audit --no-fund --silent)
fi
op_port="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The demo's address, as `stepup demo` prints it (http://localhost:PORT on loopback): the
# redirect URI registered with the provider must be on it, or the sign-in comes back to
# another site with other cookies.
base="$(.venv/bin/python -c 'import sys; from stepup.cli.demo import browser_url; print(browser_url(*sys.argv[1:]))' "$host" "$port")"
op_log="$(mktemp)"
STEPUP_OIDC_REDIRECT_URI="$base/sso/oidc/callback" node "$provider_dir/provider.mjs" "$op_port" >"$op_log" 2>&1 &
op_pid=$!
stop_provider() {
  kill "$op_pid" 2>/dev/null || true
  wait "$op_pid" 2>/dev/null || true
  rm -f "$op_log"
}
trap stop_provider EXIT
for _ in $(seq 300); do  # up to 30 s for its "listening on" line
  grep -q "listening on" "$op_log" && break
  kill -0 "$op_pid" 2>/dev/null || { cat "$op_log" >&2; echo "demo.sh: the OpenID provider did not start" >&2; exit 1; }
  sleep 0.1
done
grep -q "listening on" "$op_log" || { echo "demo.sh: the OpenID provider did not start in 30 s" >&2; exit 1; }

export STEPUP_DEMO_OIDC_ISSUER="http://127.0.0.1:$op_port"
export STEPUP_DEMO_OIDC_CLIENT_ID=stepup-rp
export STEPUP_DEMO_OIDC_CLIENT_SECRET=stepup-rp-secret  # the test provider's, public
export STEPUP_DEMO_OIDC_NAME="Test OpenID provider"
export STEPUP_DEMO_OIDC_ACCOUNT_HINT="alice / alice-password"  # the provider's test account
echo "OpenID provider (tests/idp/oidc): $STEPUP_DEMO_OIDC_ISSUER"
# Recent authlib warns on the console, when the demo's SSO imports its httpx client, that
# it is falling back to httpx for want of httpx2 (AuthlibDeprecationWarning, from
# authlib.integrations.httpx_client): the [oidc] extra installs httpx, on purpose. That one
# warning is silenced for this launcher only. Importing authlib.deprecate puts an "always"
# filter for authlib's warnings first, so this filter is added after that import.
launch='import sys, warnings
from authlib.deprecate import AuthlibDeprecationWarning
warnings.filterwarnings("ignore", "The httpx module is deprecated", AuthlibDeprecationWarning, r"authlib\.integrations\.httpx_client\.")
from stepup.cli import main
sys.exit(main())'
status=0
.venv/bin/python -c "$launch" demo "${args[@]}" || status=$?
exit "$status"
