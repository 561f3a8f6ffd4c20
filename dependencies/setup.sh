#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv and install the pinned
# dependencies into it. Safe to run again: pip skips what is already installed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup: Python >= 3.10 is required (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.10+" >&2
  exit 2
fi
if [ ! -x "$repo/.venv/bin/python" ]; then
  "$python" -m venv "$repo/.venv"
fi
"$repo/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/dependencies/requirements.txt"
echo "setup: environment ready in $repo/.venv"
