#!/usr/bin/env bash
# Download GlaS (MICCAI 2015 gland segmentation challenge, Warwick-QU release 2016-07-08) from the
# official TIA page and extract it.
#   usage: cmds/download_glas.sh [DEST]     (DEST defaults to datasets/ under the repository)
# Needs curl or wget, and unzip (or python3). The page may ask for a Warwick sign-in; if the
# download fails, fetch the zip by hand from the page below into DEST/GlaS-2015/ and run this
# script again: it reuses a complete archive.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/datasets}"
# shellcheck source=fetch.sh
source "$repo/cmds/fetch.sh"
url="https://warwick.ac.uk/fac/sci/dcs/research/tia/glascontest/download/warwick_qu_dataset_released_2016_07_08.zip"
md5="495b2a9f3d694545fbec06673fb3f40f"



mkdir -p "$dest/GlaS-2015"
cd "$dest/GlaS-2015"
archive="warwick_qu_dataset_released_2016_07_08.zip"
[ -f "$archive" ] || fetch "$url" "$archive"
check_md5 "$archive" "$md5"
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$archive"
else
  python3 -m zipfile -e "$archive" .
fi
root="$(pwd)/Warwick QU Dataset (Released 2016_07_08)"
[ -f "$root/Grade.csv" ] || { echo "download_glas: $root/Grade.csv not found after extraction" >&2; exit 2; }
echo "GlaS is in: $root"
echo "next, from $repo:"
echo "  python create_folds.py --dataset glas --data_root \"$root\""
