#!/usr/bin/env bash
# Download CUB-200-2011 (images, metadata, official train/test split) and its segmentation masks
# from the official Caltech data repository, and extract both into one dataset root.
#   usage: cmds/download_cub.sh [DEST]     (DEST defaults to datasets/ under the repository)
# Needs curl or wget, and tar. About 1.2 GB.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/datasets}"
# shellcheck source=fetch.sh
source "$repo/cmds/fetch.sh"
images_url="https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1"
images_md5="97eceeb196236b17998738112f37df78"
masks_url="https://data.caltech.edu/records/w9d68-gec53/files/segmentations.tgz?download=1"
masks_md5="4d47ba1228eae64f2fa547c47bc65255"



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
