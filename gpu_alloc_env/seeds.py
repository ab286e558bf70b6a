"""Every seed range the project uses: training, validation, tuning and evaluation never share a seed.

| range                                 | episodes                                                |
|---------------------------------------|---------------------------------------------------------|
| ``0`` ..                              | ``gpu-alloc compare`` (``--seed``, default 0)           |
| ``1000 K + e``, K in ``0..899``       | training environment ``e`` of a PPO run of seed ``K``   |
| :data:`TWIN_REPORT_SEED_BASE` ..      | the twin report's generated episodes                    |
| :data:`VALIDATION_SEED_BASE` ..       | periodic validation during training                     |
| :data:`TUNING_SEED_BASE` ..           | ``gpu-alloc evaluate --first-seed 950000`` (tuning)     |
| :data:`EVALUATION_SEED_BASE` ..       | ``gpu-alloc evaluate``'s held-out episodes (default)    |

A training run's environments start at ``1000 K`` (:func:`training_seed`) and their generators
continue across episodes, so a run's training episodes never reach validation's seeds.
``gpu-alloc compare`` scores the fixed baselines only, which learn nothing, so its seeds may be
training's.
"""

from __future__ import annotations

MAX_TRAIN_SEED = 899
"""Training seeds run from 0 to this, so that training environment seeds stay below validation's."""
TRAIN_SEED_STRIDE = 1000
"""Training environment ``e`` of a run with seed ``K`` starts from seed ``TRAIN_SEED_STRIDE * K + e``."""
TWIN_REPORT_SEED_BASE = 500_000
"""First seed of the episodes the twin report generates for each twin."""
VALIDATION_SEED_BASE = 900_000
"""First seed of the periodic validation episodes."""
FIRST_UNUSED_SEED = VALIDATION_SEED_BASE + 1000
"""Seeds below this belong to training or validation episodes."""
TUNING_SEED_BASE = 950_000
"""First seed for comparing hyperparameters: disjoint from training, validation and evaluation."""
EVALUATION_SEED_BASE = 1_000_000
"""First seed of ``gpu-alloc evaluate``'s held-out episodes."""


def training_seed(run_seed: int) -> int:
    """The seed of a run's first training environment (the others follow it)."""
    return TRAIN_SEED_STRIDE * run_seed
