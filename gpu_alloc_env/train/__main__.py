"""``python -m gpu_alloc_env.train`` is ``gpu-alloc``."""

from gpu_alloc_env.train.cli import main

raise SystemExit(main())
