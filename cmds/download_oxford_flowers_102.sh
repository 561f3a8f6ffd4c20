#!/usr/bin/env bash
# Download Oxford Flowers 102 (images, labels, official splits, segmentations) from the VGG
# page and extract it into one dataset root.
#   usage: cmds/download_oxford_flowers_102.sh [DEST]   (DEST defaults to datasets/ under the repository)
# Needs curl or wget, and tar. About 530 MB.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/datasets}"
# shellcheck source=fetch.sh
source "$repo/cmds/fetch.sh"
base="https://www.robots.ox.ac.uk/~vgg/data/flowers/102"


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
