"""Score trained runs and the baselines on the same held-out episodes.

The script form of ``gpu-alloc evaluate``, with the same options
(``python train/evaluate.py --help``); it runs from a checkout or anywhere the package
is installed.
"""

import sys

from gpu_alloc_env.train.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
