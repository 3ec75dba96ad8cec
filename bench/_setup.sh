# Sourced by scripts/bench and scripts/bench-protocol: create or reuse the benchmark's own environment.
# - bench/.venv (BENCH_VENV overrides): python-socketio + uvicorn (asyncio loop) + matplotlib, pinned in
#   bench/requirements.txt; installs again only when that file changed.
# - bench/node_modules: socket.io, socket.io-client (npm ci from the committed package-lock.json).
# - the project's own .venv (VENV overrides), so that our server's console scripts exist; best effort: when
#   that fails the benchmark still runs the references and reports our server as not available.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
BENCH_VENV=${BENCH_VENV:-$BENCH/.venv}
BENCH_PY=$BENCH_VENV/bin/python

bench_setup() {
  local py=${PYTHON:-python3} want stamp="$BENCH_VENV/.installed-requirements"
  if [ ! -x "$BENCH_PY" ]; then
    "$py" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
    "$py" -m venv "$BENCH_VENV"
  fi
  want=$(sha256sum "$BENCH/requirements.txt" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bench: installing bench/requirements.txt into the benchmark venv" >&2
    "$BENCH_PY" -m pip install -q --disable-pip-version-check -r "$BENCH/requirements.txt"
    echo "$want" > "$stamp"
  fi
  if [ ! -d "$BENCH/node_modules" ] || [ "$BENCH/package-lock.json" -nt "$BENCH/node_modules" ]; then
    echo "bench: npm ci in bench/" >&2
    (cd "$BENCH" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
  fi
  if [ "${BENCH_SKIP_PROJECT_INSTALL:-0}" != "1" ]; then
    # A separate shell: _venv.sh sets errexit for itself, which a `|| ...` here would switch off. Its pip
    # output is shown only when it fails.
    local log
    log=$(mktemp)
    if ! bash -c 'source "$1/scripts/_venv.sh" && ensure_installed dev' _ "$ROOT" > "$log" 2>&1; then
      cat "$log" >&2
      echo "bench: warning: installing the project into its venv failed; our server may be not available" >&2
    fi
    rm -f "$log"
  fi
}
