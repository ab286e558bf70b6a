#!/usr/bin/env bash
# Regenerate everything in results/ from scratch: the baseline comparisons of every scenario, the
# PPO experiment on paper (5 training seeds x 2M steps, evaluated on 20 held-out episodes), the
# trace twins' report and the generalisation table. Run from an environment with the train extra
# installed:
#     bash results/regenerate.sh
# About two hours on a 2-core CPU; run folders go to runs/ (reused if already finished, resumed if
# interrupted).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for scenario in paper bursty diurnal trace-conv trace-conv-held-out trace-code trace-code-held-out \
    trace-conv-twin trace-code-twin; do
    gpu-alloc compare --scenario "$scenario" --episodes 10 --out "results/$scenario"
done
gpu-alloc experiment --scenario paper --seeds 0 1 2 3 4 --timesteps 2000000 \
    --runs-dir runs/paper --out results/ppo-paper --episodes 20

# Synthetic twins of the bundled traces, and the generalisation table (15 runs of 2M steps:
# paper, each trace's twin and each trace's training part, 3 seeds each; about 100 minutes).
gpu-alloc twin --out results/twins.md
gpu-alloc generalise --seeds 0 1 2 --timesteps 2000000 --episodes 20 \
    --runs-dir runs/generalisation --out results/generalisation

# The tables and computed figures of README.md and docs/MODEL.md, from the results above. The prose
# around them is written by hand: read it against the new figures.
python docs/refresh.py
