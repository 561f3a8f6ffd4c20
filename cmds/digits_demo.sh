#!/usr/bin/env bash
# A classification study on scikit-learn's digits (real data that ships with scikit-learn, 1,797 8x8
# images): Random, Least_confidence, Margin, Entropy, MC_BALD, Ensemble and Coreset, seeds 0-2, 10
# rounds of 10 images each from 2 per class, LeNet-5 on the CPU, and Full_sup as the ceiling; then
# the accuracy curves and the AUC table. It runs the scripts gen_configs.py writes (one main.py
# process per method and seed); finished rounds are skipped, so a killed demo resumes when run again.
#   usage: bash cmds/digits_demo.sh [extra main.py overrides, e.g. --max_epochs 50]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3
root=exps/digits-demo
methods=(Random Least_confidence Margin Entropy MC_BALD Ensemble Coreset Full_sup)
start=$SECONDS

"$py" gen_configs.py --datasets digits --seeds 0 1 2 --chain_rounds --out "$root/scripts" --python "$py" \
  --methods "${methods[@]}" -- --device cpu --exp_root "$root" --progress false "$@" >/dev/null
for method in "${methods[@]}"; do
  echo "== $method"
  bash "$root/scripts/run-digits-$method.sh"
done
"$py" plot_active_learning_curves.py --dataset digits --exp_root "$root" --out "$root/figures"
echo "digits demo finished in $((SECONDS - start)) s"
