"""The environment's speed and memory: ``gpu-alloc bench``, runnable from a checkout.

    python benchmarks/speed.py [--quick] [--only PART ...] [--out FILE.md]

Every figure is a ratio against a reference measured in the same process (CartPole-v1,
CartPoleVectorEnv, SB3's DummyVecEnv, a coarser decision interval); see
:mod:`gpu_alloc_env.train.bench` for the rows and the targets.
"""

from __future__ import annotations

import sys

from gpu_alloc_env.train.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
