"""Round-robin allocation: the whole pool to one agent per quantum, in turn."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import FixedPolicy

DEFAULT_QUANTUM_S = 120.0
"""Long enough for the slowest default agent (the 70B, about 67 s to start) to serve for about half
its turn; a quantum shorter than an agent's cold start means that agent never serves."""


class RoundRobinPolicy(FixedPolicy):
    """Agent ``floor(t / quantum_s) mod N`` asks for as many replicas as the pool holds; the others none.

    The turn-holder is capped at its ``max_replicas`` and the pool. The turn is read from the episode
    progress in the observation, so the policy is stateless.

    Args:
        config: the scenario, or the environment that has it.
        quantum_s: length of one agent's turn, simulated seconds.
    """

    name = "round_robin"

    def __init__(self, config: ScenarioConfig | object, quantum_s: float = DEFAULT_QUANTUM_S) -> None:
        super().__init__(config)
        if not quantum_s > 0.0 or not np.isfinite(quantum_s):
            raise ValueError(f"quantum_s must be a positive number of seconds, got {quantum_s!r}")
        self.quantum_s = float(quantum_s)
        self.turn_replicas = np.minimum(
            self.max_replicas, np.floor(self.capacity_gpus / self.gpus_per_replica)
        )

    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """The whole pool to the agent whose turn it is."""
        batch, n = obs.active_replicas.shape
        # Half an interval of slack absorbs float32 rounding of the episode progress.
        half_step_s = 0.5 * self.config.decision_interval_s
        turn = np.floor((obs.time_s + half_step_s) / self.quantum_s).astype(np.int64) % n
        action = np.zeros((batch, n))
        action[np.arange(batch), turn] = self.turn_replicas[turn]
        return action
