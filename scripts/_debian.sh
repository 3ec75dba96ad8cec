# Sourced by scripts/test: Debian packages the tests start for real (redis-server, haproxy, chromium).
# ensure_debian_packages COMMAND=PACKAGE[,PACKAGE...] ...: for each COMMAND missing from PATH (and /usr/sbin,
# /usr/lib/chromium), install its packages with one apt-get update and one apt-get install, when running as
# root with apt-get; otherwise say which tests skip and the command that would install them (under CI=true
# those tests fail instead of skipping).
ensure_debian_packages() {
  local spec cmd pkgs missing=() names=()
  for spec in "$@"; do
    cmd=${spec%%=*} pkgs=${spec#*=}
    if command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/lib/$cmd/$cmd" ]; then
      continue
    fi
    names+=("$cmd")
    IFS=, read -r -a more <<< "$pkgs"
    missing+=("${more[@]}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "apt-get could not install ${missing[*]}: the tests that need ${names[*]} will skip (fail with CI=true)" >&2
  else
    echo "missing ${names[*]}: the tests that need them skip (sudo apt-get install -y ${missing[*]})" >&2
  fi
}
