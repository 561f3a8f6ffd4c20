#!/usr/bin/env bash
# Download the PH2 dermoscopy database (ADDI project, Universidade do Porto) and extract it.
#   usage: cmds/download_ph2.sh [DEST]     (DEST defaults to datasets/ under the repository)
# The archive is a RAR file: extracting it needs unrar, 7z or bsdtar (e.g. apt-get install
# unrar, or p7zip-full). Needs curl or wget.
# Official page: https://www.fc.up.pt/addi/ph2%20database.html (it links the archive below).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/datasets}"
# shellcheck source=fetch.sh
source "$repo/cmds/fetch.sh"
url="https://www.dropbox.com/s/k88qukc20ljnbuo/PH2Dataset.rar?dl=1"


if command -v unrar >/dev/null 2>&1; then
  extract() { unrar x -o+ "$1" ./; }
elif command -v 7z >/dev/null 2>&1; then
  extract() { 7z x -y "$1"; }
elif command -v bsdtar >/dev/null 2>&1; then
  extract() { bsdtar -xf "$1"; }
else
  echo "download_ph2: PH2Dataset.rar needs unrar, 7z or bsdtar to extract; install one (e.g. apt-get install unrar)" >&2
  exit 2
fi

mkdir -p "$dest"
cd "$dest"
[ -f PH2Dataset.rar ] || fetch "$url" PH2Dataset.rar
extract PH2Dataset.rar  # -> PH2Dataset/{PH2_dataset.txt, PH2 Dataset images/IMDxxx/...}
root="$(pwd)/PH2Dataset"
[ -f "$root/PH2_dataset.txt" ] || { echo "download_ph2: $root/PH2_dataset.txt not found after extraction" >&2; exit 2; }
echo "PH2 is in: $root"
echo "next, from $repo:"
echo "  python create_folds.py --dataset ph2 --data_root \"$root\""
