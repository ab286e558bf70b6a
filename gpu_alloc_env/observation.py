"""The normalised observation: its layout, its encoding from the simulator's view and its decoding.

Unbounded quantities ``x`` are squashed as ``x / (x + scale)`` into ``[0, 1)``, which keeps them
invertible (``x = scale * y / (1 - y)``); fractions of the capacity are already in ``[0, 1]``. A
fixed policy can therefore read the observation back in natural units with :meth:`decode`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.arrays import FloatArray
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.simulator import SimView

AGENT_FEATURES: tuple[tuple[str, str], ...] = (
    ("queued", "requests waiting in the agent's queue, squashed with scale 10"),
    ("running", "requests in its replicas' batches, squashed with scale 32"),
    ("arrival_rate", "recent request arrival rate, squashed with scale 1 request/s"),
    ("active", "GPUs of serving replicas / capacity_gpus"),
    ("starting", "GPUs of replicas in their cold start / capacity_gpus"),
    ("draining", "GPUs of draining replicas / capacity_gpus"),
    ("kept_alive", "GPUs of kept-alive (idle, warm) replicas / capacity_gpus"),
    ("kv_use", "KV-cache blocks in use / blocks of its serving and draining replicas (0 without)"),
    ("preemption_rate", "recent preemption rate, squashed with scale 1 per s"),
    ("replica_gpus", "tensor_parallel / capacity_gpus"),
    ("max", "min(max_replicas x tensor_parallel, capacity_gpus) / capacity_gpus"),
    ("priority", "priority / the largest priority"),
    ("slo_pressure", "age of the request at the head of the queue / request_slo_s, squashed with scale 1"),
)
"""Per-agent features, in order, with their meaning."""

GLOBAL_FEATURES: tuple[tuple[str, str], ...] = (
    ("free", "GPUs held by no replica / capacity_gpus"),
    ("progress", "elapsed time / episode_length_s"),
    ("phase_sin", "sin of the diurnal phase (0 for other patterns)"),
    ("phase_cos", "cos of the diurnal phase (0 for other patterns)"),
    ("in_flight", "tasks in flight, squashed with scale 100 tasks"),
)
"""Global features, after the per-agent block, in order."""

QUEUE_SCALE = 10.0
RUNNING_SCALE = 32.0
RATE_SCALE_RPS = 1.0
IN_FLIGHT_SCALE = 100.0
_SIGNED = {"phase_sin", "phase_cos"}
_SQUASHED = [0, 1, 2, 8, 12]
"""Per-agent features squashed with a scale: queued, running, arrival rate, preemption rate, SLO pressure."""
_SQUASH_SCALES = np.array([QUEUE_SCALE, RUNNING_SCALE, RATE_SCALE_RPS, RATE_SCALE_RPS, 1.0])


def squash(x: FloatArray, scale: FloatArray | float) -> FloatArray:
    """Map ``x >= 0`` into ``[0, 1)`` as ``x / (x + scale)``."""
    return x / (x + scale)


def unsquash(y: FloatArray, scale: FloatArray | float) -> FloatArray:
    """Inverse of :func:`squash`."""
    y = np.minimum(np.maximum(y, 0.0), 1.0 - 1e-7)
    x: FloatArray = scale * y / (1.0 - y)
    return x


@dataclass(frozen=True)
class DecodedObservation:
    """An observation in natural units; per-agent fields are (B, N), global ones (B,).

    Replica counts are read back from GPU fractions, so they are whole numbers up to float32
    rounding.
    """

    queued: FloatArray
    running: FloatArray
    arrival_rate_rps: FloatArray
    active_replicas: FloatArray
    starting_replicas: FloatArray
    draining_replicas: FloatArray
    kept_alive_replicas: FloatArray
    kv_use: FloatArray
    preemption_rps: FloatArray
    oldest_wait_s: FloatArray
    free_gpus: FloatArray
    time_s: FloatArray
    tasks_in_flight: FloatArray

    @property
    def replicas(self) -> FloatArray:
        """(B, N) replicas starting or serving: what the last allocation holds."""
        held: FloatArray = self.active_replicas + self.starting_replicas
        return held


class ObservationLayout:
    """Encodes a :class:`SimView` into float32 vectors, and decodes them.

    The vector holds ``len(AGENT_FEATURES)`` features for agent 0, then for agent 1, and so on,
    followed by the ``GLOBAL_FEATURES``.
    """

    def __init__(self, config: ScenarioConfig) -> None:
        self.config = config
        agents = config.agents
        self.num_agents = len(agents)
        self.capacity_gpus = float(config.capacity_gpus)
        self.gpus_per_replica = np.array([a.tensor_parallel for a in agents], dtype=np.float64)
        self.max_gpus = np.array([a.max_gpus for a in agents], dtype=np.float64)
        self.priority = np.array([a.priority for a in agents])
        self.request_slo_s = np.array([a.request_slo_s for a in agents])
        self.size = self.num_agents * len(AGENT_FEATURES) + len(GLOBAL_FEATURES)
        self._static = np.stack(
            [
                self.gpus_per_replica / self.capacity_gpus,
                np.minimum(self.max_gpus, self.capacity_gpus) / self.capacity_gpus,
                self.priority / self.priority.max(),
            ],
            axis=1,
        )
        """(N, 3) the features that do not change: replica size, largest holding, priority."""

    def names(self) -> list[str]:
        """Name of every element, ``agent.feature`` then ``feature`` for global ones."""
        per_agent = [f"{a.name}.{f}" for a in self.config.agents for f, _ in AGENT_FEATURES]
        return per_agent + [f for f, _ in GLOBAL_FEATURES]

    def bounds(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Elementwise (low, high) of the observation."""
        low = np.zeros(self.size, dtype=np.float32)
        high = np.ones(self.size, dtype=np.float32)
        offset = self.num_agents * len(AGENT_FEATURES)
        for i, (name, _) in enumerate(GLOBAL_FEATURES):
            if name in _SIGNED:
                low[offset + i] = -1.0
        return low, high

    def encode(self, view: SimView) -> NDArray[np.float32]:
        """(B, size) observation of every environment of ``view``."""
        cfg = self.config
        cap = self.capacity_gpus
        size = self.gpus_per_replica
        b = view.time_s.shape[0]
        n = self.num_agents
        out = np.empty((b, self.size), dtype=np.float32)
        agent = out[:, : n * len(AGENT_FEATURES)].reshape(b, n, len(AGENT_FEATURES))
        kv_total = view.kv_total_blocks.astype(np.float64)
        agent[:, :, 0] = squash(view.queued.astype(np.float64), QUEUE_SCALE)
        agent[:, :, 1] = squash(view.running.astype(np.float64), RUNNING_SCALE)
        agent[:, :, 2] = squash(view.arrival_rps, RATE_SCALE_RPS)
        agent[:, :, 3] = view.active * size / cap
        agent[:, :, 4] = view.starting * size / cap
        agent[:, :, 5] = view.draining * size / cap
        agent[:, :, 6] = view.kept_alive * size / cap
        agent[:, :, 7] = np.divide(
            view.kv_used_blocks, kv_total, out=np.zeros_like(kv_total), where=kv_total > 0
        )
        agent[:, :, 8] = squash(view.preemption_rps, RATE_SCALE_RPS)
        agent[:, :, 9:12] = self._static
        agent[:, :, 12] = squash(view.oldest_wait_s / self.request_slo_s, 1.0)
        glob = out[:, n * len(AGENT_FEATURES) :]
        glob[:, 0] = np.clip(1.0 - view.held_gpus / cap, 0.0, 1.0)
        glob[:, 1] = np.clip(view.time_s / cfg.episode_length_s, 0.0, 1.0)
        if cfg.workload.pattern == "diurnal":
            glob[:, 2] = np.sin(view.diurnal_phase_rad)
            glob[:, 3] = np.cos(view.diurnal_phase_rad)
        else:
            glob[:, 2:4] = 0.0
        glob[:, 4] = squash(view.tasks_in_flight.astype(np.float64), IN_FLIGHT_SCALE)
        return out

    def decode(self, observation: NDArray[np.floating]) -> DecodedObservation:
        """Natural units of a (size,) or (B, size) observation."""
        obs = np.asarray(observation, dtype=np.float64)
        if obs.shape[-1] != self.size:
            raise ValueError(
                f"observation has {obs.shape[-1]} elements, expected {self.size} for scenario "
                f"{self.config.name!r} with {self.num_agents} agents; build the policy with the "
                "scenario of the environment it acts in"
            )
        obs = obs.reshape(-1, self.size)
        n, f = self.num_agents, len(AGENT_FEATURES)
        agent = obs[:, : n * f].reshape(-1, n, f)
        glob = obs[:, n * f :]
        cap = self.capacity_gpus
        counts = unsquash(agent[:, :, _SQUASHED], _SQUASH_SCALES)
        replicas = np.rint(agent[:, :, 3:7] * cap / self.gpus_per_replica[None, :, None])
        return DecodedObservation(
            queued=counts[:, :, 0],
            running=counts[:, :, 1],
            arrival_rate_rps=counts[:, :, 2],
            active_replicas=replicas[:, :, 0],
            starting_replicas=replicas[:, :, 1],
            draining_replicas=replicas[:, :, 2],
            kept_alive_replicas=replicas[:, :, 3],
            kv_use=agent[:, :, 7],
            preemption_rps=counts[:, :, 3],
            oldest_wait_s=counts[:, :, 4] * self.request_slo_s,
            free_gpus=glob[:, 0] * cap,
            time_s=glob[:, 1] * self.config.episode_length_s,
            tasks_in_flight=unsquash(glob[:, 4], IN_FLIGHT_SCALE),
        )
