#!/usr/bin/env bash
# The whole study on the embedded synthetic set, on the CPU: folds, WSL (theta0), then Random,
# Entropy, MC_Dropout, Label_prop and Full_sup (the paper's methods), the LL4AL and DAL strategies,
# and Entropy with region-level annotation (superpixels instead of whole images), for seeds 0 and 1
# over 3 rounds, then the figures (drawn against the annotated share of pixels, since one run
# annotates regions) and the qualitative figures of 3 test images (best, median and worst of Label_prop).
# It runs the very scripts gen_configs.py writes, with --chain_rounds: one main.py process per
# (method, seed), so the start-up (imports, data, model) is paid once per run instead of once per
# round. Finished rounds are skipped, so a killed demo is resumed by running it again.
#   usage: bash cmds/demo.sh [extra main.py overrides, e.g. --max_epochs 10]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3
scripts="exps/demo/scripts"
methods=(Random Entropy LL4AL DAL MC_Dropout Label_prop Full_sup)
common=(--device cpu --exp_root exps/demo --progress false)
start=$SECONDS

"$py" create_folds.py --dataset synthetic --data_root datasets/synthetic >/dev/null
"$py" gen_configs.py --datasets synthetic --seeds 0 1 --rounds 3 --chain_rounds --out "$scripts" --python "$py" \
  --methods "${methods[@]}" -- "${common[@]}" "$@" >/dev/null
"$py" gen_configs.py --datasets synthetic --seeds 0 1 --rounds 3 --chain_rounds --out "$scripts/regions" \
  --python "$py" --methods Entropy --exp_tag regions -- "${common[@]}" --annotation_unit region "$@" >/dev/null
for method in "${methods[@]}"; do
  echo "== $method"
  bash "$scripts/run-synthetic-$method.sh"
done
echo "== Entropy, region-level annotation"
bash "$scripts/regions/run-synthetic-Entropy.sh"
"$py" plot_active_learning_curves.py --dataset synthetic --exp_root exps/demo --out exps/demo/figures --qualitative 3
echo "training curves of every round: tensorboard --logdir exps/demo (or round_<r>/training_log.csv)"
echo "demo finished in $((SECONDS - start)) s"
