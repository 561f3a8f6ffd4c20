#!/usr/bin/env bash
# A Label Studio server for a person who annotates (--oracle label_studio, or --oracle files with its
# exports) and for the tests, in its own virtual environment (.label-studio-venv) because its pinned
# dependencies clash with the project's.
#
#   install                      create .label-studio-venv if missing and install label-studio-requirements.txt
#   start [--data DIR] [ROOT]    start it on 127.0.0.1:$LABEL_STUDIO_PORT (default 8765), serving local files
#                                under ROOT (default $LABEL_STUDIO_DOCUMENT_ROOT); wait until it answers, then
#                                print the variables the tests read, as one `export` line
#   stop                         stop the server that `start` started on that port
#
# ROOT, Label Studio's local-files document root, must be the runs' exp_root: the tasks of a request name
# their images relative to it, and the Local files storage that serves them (on a run folder) must lie
# under it.
#
# The projects, users and tokens live in the data folder DIR (default: .label-studio-data/ in the
# repository, ignored by git), which neither start nor stop ever deletes, so annotations and tokens
# survive a restart. The first start on an empty folder creates the user $LABEL_STUDIO_EMAIL with
# $LABEL_STUDIO_PASSWORD (default: a random one, kept in DIR/password so later starts print it again).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.label-studio-venv"
port="${LABEL_STUDIO_PORT:-8765}"
run="${TMPDIR:-/tmp}/label-studio-$port"   # pid and log of the server on that port

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

password_of() {  # password_of DATA: the password of the folder's user (chosen now when the folder is new)
  local data="$1"
  if [ -n "${LABEL_STUDIO_PASSWORD:-}" ]; then
    printf '%s' "$LABEL_STUDIO_PASSWORD"
  elif [ -f "$data/password" ]; then
    cat "$data/password"
  elif [ -e "$data/label_studio.sqlite3" ]; then
    echo "label-studio: $data has a user but no password file: set LABEL_STUDIO_PASSWORD" >&2
    return 1
  else
    (umask 077 && od -An -N12 -tx1 /dev/urandom | tr -d ' \n' | tee "$data/password")
  fi
}

start() {
  local data="$repo/.label-studio-data"
  if [ "${1:-}" = --data ]; then
    data="${2:?--data needs a folder}"
    shift 2
  fi
  local root="${1:-${LABEL_STUDIO_DOCUMENT_ROOT:?give the local-files document root, the runs exp_root}}"
  local url="http://127.0.0.1:$port" email="${LABEL_STUDIO_EMAIL:-ci@example.com}" password
  root="$(cd "$root" && pwd)"
  if [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then
    echo "label-studio: already running on port $port (pid $(cat "$run/pid")); stop it first" >&2
    return 1
  fi
  mkdir -p "$data" "$run"
  data="$(cd "$data" && pwd)"
  password="$(password_of "$data")"
  LABEL_STUDIO_BASE_DATA_DIR="$data" LABEL_STUDIO_USERNAME="$email" LABEL_STUDIO_PASSWORD="$password" \
    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT="$root" \
    setsid "$venv/bin/label-studio" start --host 127.0.0.1 --port "$port" --no-browser \
    </dev/null >"$run/log" 2>&1 &
  echo $! >"$run/pid"
  local deadline=$((SECONDS + ${LABEL_STUDIO_START_TIMEOUT:-180}))
  while ((SECONDS < deadline)); do
    if "$venv/bin/python" -c "import urllib.request as u; u.urlopen('$url/health', timeout=5)" 2>/dev/null; then
      {
        echo "label-studio: running at $url, serving $root, data in $data (log: $run/log)"
        echo "  log in as $email; an API token for --oracle label_studio: Account & Settings -> Personal Access"
        echo "  Token -> Create, saved in a file (--label_studio_token_file FILE) or in LABEL_STUDIO_API_KEY"
        echo "  local files: --exp_root must be $root (the tasks name their images relative to it)"
      } >&2
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
  rm -f "$run/pid" "$run/log"
  rmdir "$run" 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 install | start [--data DIR] [DOCUMENT_ROOT] | stop" >&2; exit 2 ;;
esac
