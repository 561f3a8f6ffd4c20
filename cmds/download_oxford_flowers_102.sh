#!/usr/bin/env bash
# Download Oxford Flowers 102 (images, labels, official splits, segmentations) from the VGG
# page and extract it into one dataset root.
#   usage: cmds/download_oxford_flowers_102.sh [DEST]   (DEST defaults to datasets/ under the repository)
# Needs curl or wget, and tar. About 530 MB.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/datasets}"
base="https://www.robots.ox.ac.uk/~vgg/data/flowers/102"

fetch() {  # fetch URL FILE: download to FILE.part, then rename, so a cut download is not reused
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 -o "$2.part" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -O "$2.part" "$1"
  else
    echo "download_oxford_flowers_102: neither curl nor wget is installed; install one of them" >&2
    exit 2
  fi
  mv "$2.part" "$2"
}

root="$dest/Oxford-flowers-102"
mkdir -p "$root"
cd "$root"
for file in 102flowers.tgz 102segmentations.tgz imagelabels.mat setid.mat; do
  [ -f "$file" ] || fetch "$base/$file" "$file"
done
tar -xzf 102flowers.tgz        # -> jpg/image_XXXXX.jpg
tar -xzf 102segmentations.tgz  # -> segmim/segmim_XXXXX.jpg
root="$(pwd)"
[ -d "$root/jpg" ] && [ -d "$root/segmim" ] || { echo "download_oxford_flowers_102: jpg/ or segmim/ missing after extraction" >&2; exit 2; }
echo "Oxford Flowers 102 is in: $root"
echo "next, from $repo:"
echo "  python create_folds.py --dataset oxford-flowers-102 --data_root \"$root\""
