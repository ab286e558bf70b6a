"""``python -m train`` is ``gpu-alloc``."""

from train.cli import main

raise SystemExit(main())
