"""Train a PPO allocator on a scenario, with checkpoints, resume and validation.

The script form of ``gpu-alloc train``, with the same options
(``python train/ppo.py --help``); it runs from a checkout or anywhere the package
is installed.
"""

import sys

from gpu_alloc_env.train.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
