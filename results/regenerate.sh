#!/usr/bin/env bash
# Regenerate everything in results/ from scratch: the tuned baselines' settings, the baseline
# comparisons of every scenario, the PPO experiments (paper: 5 training seeds x 2M steps; bursty,
# diurnal and the traces' training parts: 3 x 64k decisions of 30 s, that is 1.92M steps each;
# evaluated on 20 held-out episodes), the trace twins' report, the generalisation table and the
# benchmark of every policy on every benchmark scenario, and the agreement of PPO trained with
# Stable-Baselines3 and with RLlib. Run from an environment with the train and ray extras installed:
#     bash results/regenerate.sh
# About four hours on a 2-core CPU; run folders go to runs/ (reused if already finished, resumed
# if interrupted).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCENARIOS="paper bursty diurnal trace-conv trace-conv-held-out trace-code trace-code-held-out
    trace-conv-twin trace-code-twin"

# The provisioned constant and the KPA autoscaler's targets, searched on the tuning seeds and
# shipped with the package (1 to 3 minutes per scenario).
for scenario in $SCENARIOS; do
    gpu-alloc tune --scenario "$scenario" --out gpu_alloc_env/data/tuned
done
for scenario in $SCENARIOS; do
    gpu-alloc compare --scenario "$scenario" --episodes 10 --out "results/$scenario"
done
gpu-alloc experiment --scenario paper --seeds 0 1 2 3 4 --timesteps 2000000 \
    --runs-dir runs/paper --out results/ppo-paper --episodes 20
# bursty and diurnal train the offset action with decisions held 30 s (action_repeat) and the
# paired reward (hyperparams.yml): a training step is one 30 s decision, about 25 minutes a run.
for scenario in bursty diurnal; do
    gpu-alloc experiment --scenario "$scenario" --seeds 0 1 2 --timesteps 64000 \
        --runs-dir "runs/$scenario" --out "results/ppo-$scenario" --episodes 20
done

# Synthetic twins of the bundled traces, and the generalisation table (15 runs of 2M steps:
# paper, each trace's twin and each trace's training part, 3 seeds each; about 100 minutes).
gpu-alloc twin --out results/twins.md
gpu-alloc generalise --seeds 0 1 2 --timesteps 2000000 --episodes 20 \
    --runs-dir runs/generalisation --out results/generalisation

# The benchmark's PPO on the trace parts: the learner of bursty and diurnal (the offset action
# held 30 s, the paired reward; hyperparams.yml) trained on each trace's training part with the
# scenario's own reward. The trace scenarios' blocks stay paper's, for the generalisation study
# above, so these runs name the learner's settings with --hp. About 25 minutes a run.
for trace in conv code; do
    gpu-alloc experiment --scenario "trace-$trace" --seeds 0 1 2 --timesteps 64000 \
        --hp action=offset --hp reward_baseline=provisioned --hp action_repeat=30 --hp n_steps=40 \
        --hp batch_size=320 --hp gamma=0.9 --hp eval_freq_steps=6400 --hp 'train_reward={}' \
        --runs-dir "runs/trace-$trace" --out "results/ppo-trace-$trace" --episodes 20
done

# Every policy on every benchmark scenario, with the runs trained above (the trace parts' runs
# were trained on the traces' training parts); about 5 minutes per scenario.
gpu-alloc benchmark --scenario paper --runs runs/paper/paper-seed{0,1,2,3,4} --out results/benchmark
gpu-alloc benchmark --scenario bursty --runs runs/bursty/bursty-seed{0,1,2} --out results/benchmark
gpu-alloc benchmark --scenario diurnal --runs runs/diurnal/diurnal-seed{0,1,2} --out results/benchmark
for trace in conv code; do
    gpu-alloc benchmark --scenario "trace-$trace-held-out" \
        --runs "runs/trace-$trace/trace-$trace-seed"{0,1,2} --out results/benchmark
done

# Agreement of the two learner libraries: PPO on paper with Stable-Baselines3 and with RLlib, the
# same hyperparameters, seeds and budget (3 x 500k steps each, about 10 minutes a run), scored on the
# same held-out episodes as policies ppo and ppo-rllib. Needs the ray extra (pip install -e
# ".[train,ray]"); the two experiments run at the same time so that their wall times compare.
gpu-alloc experiment --scenario paper --backend sb3 --seeds 0 1 2 --timesteps 500000 --parallel 1 \
    --runs-dir runs/agreement-sb3 --out runs/agreement-sb3-eval --episodes 20 &
sb3=$!
gpu-alloc experiment --scenario paper --backend rllib --seeds 0 1 2 --timesteps 500000 --parallel 1 \
    --runs-dir runs/agreement-rllib --out runs/agreement-rllib-eval --episodes 20 &
rllib=$!
wait "$sb3"
wait "$rllib"
gpu-alloc evaluate --runs runs/agreement-sb3/paper-seed{0,1,2} runs/agreement-rllib/paper-seed{0,1,2} \
    --baselines adaptive provisioned --episodes 20 --out results/agreement

# Speed and memory, as ratios against references timed in the same process (about 5 minutes; run
# it on a machine doing nothing else).
gpu-alloc bench --out results/bench

# The tables and computed figures of README.md and docs/MODEL.md, from the results above. The prose
# around them is written by hand: read it against the new figures.
python docs/refresh.py
