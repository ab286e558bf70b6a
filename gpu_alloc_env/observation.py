"""The normalised observation: its layout, its encoding from the simulator and its exact decoding.

Unbounded quantities ``x`` are squashed as ``x / (x + scale)`` into ``[0, 1)``, which keeps them
invertible (``x = scale * y / (1 - y)``); fractions of the capacity are already in ``[0, 1]``. A
fixed policy can therefore read the observation back in natural units with :meth:`decode`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.simulator import BatchSimulator

FloatArray = NDArray[np.float64]

AGENT_FEATURES: tuple[tuple[str, str], ...] = (
    ("queue", "requests queued or in service, squashed with scale 10 requests"),
    ("queued_work", "remaining queued work, squashed with scale max_gpus GPU-seconds"),
    ("demand", "recent work arrival rate in GPUs (GPU-s per s), squashed with scale max_gpus"),
    ("arrival_rate", "recent request arrival rate, squashed with scale 1 request/s"),
    ("alloc", "allocated GPUs (warm and loading) / capacity_gpus"),
    ("warm", "warm (serving) GPUs / capacity_gpus"),
    ("loading", "GPUs still in their cold start / capacity_gpus"),
    ("kept_alive", "kept-alive GPUs after scale-to-zero / capacity_gpus"),
    ("min", "min_gpus / capacity_gpus"),
    ("max", "min(max_gpus, capacity_gpus) / capacity_gpus"),
    ("priority", "priority / the largest priority"),
    ("slo_pressure", "age of the oldest request / request_slo_s, squashed with scale 1"),
)
"""Per-agent features, in order, with their meaning."""

GLOBAL_FEATURES: tuple[tuple[str, str], ...] = (
    ("free", "unallocated GPUs / capacity_gpus"),
    ("progress", "elapsed time / episode_length_s"),
    ("phase_sin", "sin of the diurnal phase (0 for other patterns)"),
    ("phase_cos", "cos of the diurnal phase (0 for other patterns)"),
    ("in_flight", "tasks in flight, squashed with scale 100 tasks"),
)
"""Global features, after the per-agent block, in order."""

QUEUE_SCALE = 10.0
RATE_SCALE_RPS = 1.0
IN_FLIGHT_SCALE = 100.0
_SIGNED = {"phase_sin", "phase_cos"}


def squash(x: FloatArray, scale: FloatArray | float) -> FloatArray:
    """Map ``x >= 0`` into ``[0, 1)`` as ``x / (x + scale)``."""
    return x / (x + scale)


def unsquash(y: FloatArray, scale: FloatArray | float) -> FloatArray:
    """Inverse of :func:`squash`."""
    y = np.clip(y, 0.0, 1.0 - 1e-7)
    return scale * y / (1.0 - y)


@dataclass(frozen=True)
class DecodedObservation:
    """An observation in natural units; per-agent fields are (B, N), global ones (B,)."""

    queue_requests: FloatArray
    queued_work_gpu_s: FloatArray
    demand_gpus: FloatArray
    arrival_rate_rps: FloatArray
    alloc_gpus: FloatArray
    warm_gpus: FloatArray
    loading_gpus: FloatArray
    kept_alive_gpus: FloatArray
    oldest_wait_s: FloatArray
    time_s: FloatArray
    tasks_in_flight: FloatArray


class ObservationLayout:
    """Encodes a :class:`BatchSimulator`'s state into float32 vectors, and decodes them.

    The vector holds ``len(AGENT_FEATURES)`` features for agent 0, then for agent 1, and so on,
    followed by the ``GLOBAL_FEATURES``.
    """

    def __init__(self, config: ScenarioConfig) -> None:
        self.config = config
        agents = config.agents
        self.num_agents = len(agents)
        self.capacity_gpus = config.capacity_gpus
        self.max_gpus = np.array([a.max_gpus for a in agents])
        self.min_gpus = np.array([a.min_gpus for a in agents])
        self.priority = np.array([a.priority for a in agents])
        self.request_slo_s = np.array([a.request_slo_s for a in agents])
        self.size = self.num_agents * len(AGENT_FEATURES) + len(GLOBAL_FEATURES)

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

    def encode(self, sim: BatchSimulator) -> NDArray[np.float32]:
        """(B, size) observation of every environment of ``sim``."""
        cfg = self.config
        cap = self.capacity_gpus
        grain = cfg.gpu_granularity
        b = sim.batch_size
        alloc = sim.alloc_slices * grain
        wait = sim.oldest_wait_s()
        per_agent = np.stack(
            [
                squash(sim.queues.length.astype(np.float64), QUEUE_SCALE),
                squash(sim.queued_work_gpu_s(), self.max_gpus),
                squash(sim.arrival_work_gpu, self.max_gpus),
                squash(sim.arrival_rps, RATE_SCALE_RPS),
                alloc / cap,
                sim.warm_slices * grain / cap,
                sim.loading_slices * grain / cap,
                sim.parked_slices * grain / cap,
                np.broadcast_to(self.min_gpus / cap, (b, self.num_agents)),
                np.broadcast_to(np.minimum(self.max_gpus, cap) / cap, (b, self.num_agents)),
                np.broadcast_to(self.priority / self.priority.max(), (b, self.num_agents)),
                squash(wait / self.request_slo_s, 1.0),
            ],
            axis=2,
        ).reshape(b, -1)
        time_s = sim.time_s
        phase_sin = np.zeros(b)
        phase_cos = np.zeros(b)
        if cfg.workload.pattern == "diurnal":
            for e, stream in enumerate(sim.streams):
                if stream is not None:
                    angle = 2.0 * math.pi * time_s[e] / cfg.workload.diurnal_period_s
                    angle += stream.phase_rad
                    phase_sin[e], phase_cos[e] = math.sin(angle), math.cos(angle)
        glob = np.stack(
            [
                np.clip(1.0 - alloc.sum(axis=1) / cap, 0.0, 1.0),
                np.clip(time_s / cfg.episode_length_s, 0.0, 1.0),
                phase_sin,
                phase_cos,
                squash(sim.tasks_in_flight.astype(np.float64), IN_FLIGHT_SCALE),
            ],
            axis=1,
        )
        return np.concatenate([per_agent, glob], axis=1).astype(np.float32)

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
        return DecodedObservation(
            queue_requests=unsquash(agent[:, :, 0], QUEUE_SCALE),
            queued_work_gpu_s=unsquash(agent[:, :, 1], self.max_gpus),
            demand_gpus=unsquash(agent[:, :, 2], self.max_gpus),
            arrival_rate_rps=unsquash(agent[:, :, 3], RATE_SCALE_RPS),
            alloc_gpus=agent[:, :, 4] * cap,
            warm_gpus=agent[:, :, 5] * cap,
            loading_gpus=agent[:, :, 6] * cap,
            kept_alive_gpus=agent[:, :, 7] * cap,
            oldest_wait_s=unsquash(agent[:, :, 11], 1.0) * self.request_slo_s,
            time_s=glob[:, 1] * self.config.episode_length_s,
            tasks_in_flight=unsquash(glob[:, 4], IN_FLIGHT_SCALE),
        )
