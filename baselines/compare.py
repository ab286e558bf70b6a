"""Compare the fixed baselines on a scenario, with the paper's claims as per-seed ratios.

The script form of ``gpu-alloc compare``, with the same options
(``python baselines/compare.py --help``); it runs from a checkout or anywhere the package
is installed.
"""

import sys

from gpu_alloc_env.train.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
