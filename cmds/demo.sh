#!/usr/bin/env bash
# The whole study on the embedded synthetic set, on the CPU: folds, WSL (theta0), then Random,
# Entropy, MC_Dropout, Label_prop and Full_sup for seeds 0 and 1 over 3 rounds, then the figures.
# One main.py process runs all the rounds of a (method, seed) with --al_it_end, so the start-up
# (imports, data, model) is paid once per run instead of once per round; the run folders are the
# ones gen_configs.py's scripts use. Finished rounds are skipped, so a killed demo is resumed by
# running it again.
#   usage: bash cmds/demo.sh [extra main.py overrides, e.g. --max_epochs 10]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3
exp_root="exps/demo"
rounds=3
start=$SECONDS

"$py" create_folds.py --dataset synthetic --data_root datasets/synthetic >/dev/null
for method in WSL Random Entropy MC_Dropout Label_prop Full_sup; do
  echo "== $method"
  last=$((rounds - 1))
  case "$method" in WSL | Full_sup) last=0 ;; esac
  for seed in 0 1; do
    "$py" main.py --yaml synthetic.yaml --device cpu --exp_root "$exp_root" --progress false \
      --al_type "$method" --MYSEED "$seed" --exp_id "$method-seed_$seed" --al_it 0 --al_it_end "$last" "$@"
  done
done
"$py" plot_active_learning_curves.py --dataset synthetic --exp_root "$exp_root" --out "$exp_root/figures"
echo "demo finished in $((SECONDS - start)) s"
