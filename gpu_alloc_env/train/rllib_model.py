"""The policy network of an RLlib run, and its saved models as Stable-Baselines3-like predictors.

Imported only where an RLlib run is trained or evaluated: it needs the ``ray`` extra. Loading a
model (:class:`RLlibModel`) starts no Ray cluster.

:class:`GpuAllocPPOModule` is RLlib's default PPO module with Stable-Baselines3's state-independent
log standard deviation started at ``log_std_init``. Checkpoints name the class by its import path,
so it must stay here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule


class GpuAllocPPOModule(DefaultPPOTorchRLModule):  # type: ignore[misc]
    """RLlib's PPO module whose free log standard deviation starts at ``model_config["log_std_init"]``.

    With ``free_log_std`` (Stable-Baselines3's parameterisation: one learned log standard deviation
    per action dimension, independent of the observation) RLlib starts it at 0; Gaussian policies
    here start at the run's ``log_std_init``, as in Stable-Baselines3. Categorical policies
    (``offset``) have no such parameter and are left as RLlib builds them.
    """

    def setup(self) -> None:
        """Build the networks, then set the initial log standard deviation."""
        super().setup()
        init = (self.model_config or {}).get("log_std_init")
        log_std = getattr(self.pi, "log_std", None)
        if init is not None and isinstance(log_std, torch.nn.Parameter):
            with torch.no_grad():
                log_std.fill_(float(init))


def greedy_actions(
    module: Any, observations: NDArray[np.float32], deterministic: bool = True
) -> NDArray[Any]:
    """``module``'s actions for a (B, D) batch: the distribution's mode, or a sample.

    Box actions are clipped to the action space, as Stable-Baselines3's ``predict`` does and as
    RLlib's module-to-env pipeline does before the environment sees them.
    """
    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: torch.as_tensor(observations, dtype=torch.float32)})
        dist = module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        actions = (dist.to_deterministic() if deterministic else dist).sample().numpy()
    space = module.action_space
    if isinstance(space, gym.spaces.Box):
        return np.asarray(np.clip(actions, space.low, space.high))
    return np.asarray(actions)


class RLlibModel:
    """A saved ``RLModule`` (``model/`` or ``best_model/`` of an RLlib run) with SB3's ``predict``.

    Args:
        path: the module's checkpoint folder.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.module = RLModule.from_checkpoint(str(self.path.resolve()))

    def predict(self, observation: NDArray[Any], *, deterministic: bool = True) -> tuple[NDArray[Any], None]:
        """The actions for a (B, D) batch of observations, and no recurrent state."""
        return greedy_actions(self.module, np.asarray(observation, dtype=np.float32), deterministic), None
