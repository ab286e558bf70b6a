"""Train PPO on synthetic scenarios and on traces, then score it on held-out trace parts.

The script form of ``gpu-alloc generalise``, with the same options
(``python train/generalise.py --help``); it runs from a checkout or anywhere the package
is installed.
"""

import sys

from gpu_alloc_env.train.cli import main

if __name__ == "__main__":
    sys.exit(main(["generalise", *sys.argv[1:]]))
