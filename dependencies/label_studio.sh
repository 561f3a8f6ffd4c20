#!/usr/bin/env bash
# A real Label Studio for tests/test_label_studio.py, in its own virtual environment
# (.label-studio-venv) because its pinned dependencies clash with the project's.
#
#   install       create .label-studio-venv if missing and install label-studio-requirements.txt
#   start [ROOT]  start it on 127.0.0.1:$LABEL_STUDIO_PORT (default 8765) with a fresh data folder,
#                 a user, and local-files serving under ROOT (default $LABEL_STUDIO_DOCUMENT_ROOT);
#                 wait until it answers, then print the variables the test reads, as one `export` line
#   stop          stop the server that `start` started and delete its data
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.label-studio-venv"
port="${LABEL_STUDIO_PORT:-8765}"
run="${TMPDIR:-/tmp}/label-studio-$port"   # pid, log and data of the server on that port

install() {
  local log="${TMPDIR:-/tmp}/label-studio-install.log"
  if ! { [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"; } >"$log" 2>&1 ||
     ! "$venv/bin/python" -m pip install --disable-pip-version-check \
         -r "$repo/dependencies/label-studio-requirements.txt" >>"$log" 2>&1; then
    echo "label-studio: install failed: $(grep -v '^\s*$' "$log" | tail -n 1) (full log: $log)"
    return 1
  fi
  echo "label-studio: installed in $venv"
}

start() {
  local root="${1:-${LABEL_STUDIO_DOCUMENT_ROOT:?give the local-files document root}}"
  local url="http://127.0.0.1:$port" email="${LABEL_STUDIO_EMAIL:-ci@example.com}"
  local password="${LABEL_STUDIO_PASSWORD:-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}"
  root="$(cd "$root" && pwd)"
  if [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then
    echo "label-studio: already running on port $port (pid $(cat "$run/pid")); stop it first" >&2
    return 1
  fi
  rm -rf "$run" && mkdir -p "$run/data"
  LABEL_STUDIO_BASE_DATA_DIR="$run/data" LABEL_STUDIO_USERNAME="$email" LABEL_STUDIO_PASSWORD="$password" \
    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT="$root" \
    setsid "$venv/bin/label-studio" start --host 127.0.0.1 --port "$port" --no-browser \
    </dev/null >"$run/log" 2>&1 &
  echo $! >"$run/pid"
  local deadline=$((SECONDS + ${LABEL_STUDIO_START_TIMEOUT:-180}))
  while ((SECONDS < deadline)); do
    if "$venv/bin/python" -c "import urllib.request as u; u.urlopen('$url/health', timeout=5)" 2>/dev/null; then
      echo "label-studio: running at $url, serving $root (log: $run/log)" >&2
      printf 'export LABEL_STUDIO_URL=%q LABEL_STUDIO_EMAIL=%q' "$url" "$email"
      printf ' LABEL_STUDIO_PASSWORD=%q LABEL_STUDIO_DOCUMENT_ROOT=%q\n' "$password" "$root"
      return 0
    fi
    kill -0 "$(cat "$run/pid")" 2>/dev/null || break
    sleep 1
  done
  echo "label-studio: no answer from $url; the end of $run/log:" >&2
  tail -n 20 "$run/log" >&2
  stop
  return 1
}

stop() {
  if [ -f "$run/pid" ]; then
    kill -- "-$(cat "$run/pid")" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$(cat "$run/pid")" 2>/dev/null || break; sleep 1; done
    kill -9 -- "-$(cat "$run/pid")" 2>/dev/null || true
  fi
  rm -rf "$run"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 install | start [DOCUMENT_ROOT] | stop" >&2; exit 2 ;;
esac
