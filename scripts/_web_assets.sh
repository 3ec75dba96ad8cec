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
