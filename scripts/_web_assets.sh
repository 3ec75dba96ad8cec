# Sourced by scripts/serve and scripts/test after _venv.sh: install the browser files the server serves
# (Socket.IO Admin UI, @mdi/font icons, socket.io-client bundle) into web/node_modules from the committed
# lock file. Again only when the lock file changed. No npm: the server answers those routes with 404 + hint.
ensure_web_assets() {
  local dir="$ROOT/web"
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: /admin-ui/ and /socket.io/socket.io.min.js will answer 404" >&2
    return 0
  fi
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --omit=peer --no-audit --no-fund --loglevel=error && touch node_modules)
  fi
}

# Debian's chromium for the browser tests (Playwright drives it by path; never `playwright install`).
# Installed with apt-get when missing and running as root; otherwise the browser tests skip and say how.
ensure_browser() {
  if command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium for the browser tests (apt-get)"
    apt-get install -y -q chromium fonts-liberation >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium fonts-liberation >/dev/null 2>&1; } \
      || echo "apt-get could not install chromium: the browser tests will skip" >&2
  else
    echo "chromium missing: browser tests skip (sudo apt-get install -y chromium fonts-liberation)" >&2
  fi
}
