#!/usr/bin/env bash
# A multi-class semantic segmentation study on the embedded synthetic scenes (data/scenes.py: 4 classes,
# 64x64 px, generated on first use): Random, Entropy and MC_Dropout, seeds 0-2, 3 rounds from 8 labelled
# images, 8 more per round, a small U-Net on the CPU, and Full_sup as the ceiling; then the mIoU curves and
# the AUC table. It runs the scripts gen_configs.py writes (one main.py process per method and seed);
# finished rounds are skipped, so a killed demo resumes when run again.
#   usage: bash cmds/scenes_demo.sh [extra main.py overrides, e.g. --max_epochs 50]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3
root=exps/scenes-demo
methods=(Random Entropy MC_Dropout Full_sup)
start=$SECONDS

"$py" gen_configs.py --datasets scenes --seeds 0 1 2 --rounds 3 --chain_rounds --out "$root/scripts" --python "$py" \
  --methods "${methods[@]}" -- --device cpu --exp_root "$root" --progress false "$@" >/dev/null
for method in "${methods[@]}"; do
  echo "== $method"
  bash "$root/scripts/run-scenes-$method.sh"
done
"$py" plot_active_learning_curves.py --dataset scenes --exp_root "$root" --out "$root/figures"
echo "scenes demo finished in $((SECONDS - start)) s"
