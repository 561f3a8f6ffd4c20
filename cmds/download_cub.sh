#!/usr/bin/env bash
# Download CUB-200-2011 (images, metadata, official train/test split) and its segmentation masks
# from the official Caltech data repository, and extract both into one dataset root.
#   usage: cmds/download_cub.sh [DEST]     (DEST defaults to datasets/ under the repository)
# Needs curl or wget, and tar. About 1.2 GB.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/datasets}"
images_url="https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1"
images_md5="97eceeb196236b17998738112f37df78"
masks_url="https://data.caltech.edu/records/w9d68-gec53/files/segmentations.tgz?download=1"
masks_md5="4d47ba1228eae64f2fa547c47bc65255"

fetch() {  # fetch URL FILE: download to FILE.part, then rename, so a cut download is not reused
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 -o "$2.part" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -O "$2.part" "$1"
  else
    echo "download_cub: neither curl nor wget is installed; install one of them" >&2
    exit 2
  fi
  mv "$2.part" "$2"
}

check_md5() {  # check_md5 FILE SUM (skipped when md5sum is absent)
  if command -v md5sum >/dev/null 2>&1; then
    if [ "$(md5sum "$1" | cut -d' ' -f1)" != "$2" ]; then
      echo "download_cub: $1 is not the expected archive (md5 differs): delete it and run again" >&2
      exit 2
    fi
  fi
}

root="$dest/Caltech-UCSD-Birds-200-2011"
mkdir -p "$root"
cd "$root"
[ -f CUB_200_2011.tgz ] || fetch "$images_url" CUB_200_2011.tgz
check_md5 CUB_200_2011.tgz "$images_md5"
[ -f segmentations.tgz ] || fetch "$masks_url" segmentations.tgz
check_md5 segmentations.tgz "$masks_md5"
tar -xzf CUB_200_2011.tgz   # -> CUB_200_2011/{images,*.txt}
tar -xzf segmentations.tgz  # -> segmentations/<class>/<image>.png
root="$(pwd)"
[ -f "$root/CUB_200_2011/images.txt" ] || { echo "download_cub: CUB_200_2011/images.txt not found after extraction" >&2; exit 2; }
echo "CUB is in: $root"
echo "next, from $repo:"
echo "  python create_folds.py --dataset cub --data_root \"$root\""
