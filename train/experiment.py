"""Train PPO with several seeds in parallel, then evaluate every run against the baselines.

The script form of ``gpu-alloc experiment``, with the same options
(``python train/experiment.py --help``); it runs from a checkout or anywhere the package
is installed.
"""

import sys

from gpu_alloc_env.train.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", *sys.argv[1:]]))
