"""The normalised observation: its layout, its encoding from the simulator's view and its decoding.

Unbounded quantities ``x`` are squashed as ``x / (x + scale)`` into ``[0, 1)``, which keeps them
invertible (``x = scale * y / (1 - y)``); fractions of the capacity are already in ``[0, 1]``. A
fixed policy can therefore read the observation back in natural units with :meth:`decode`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

from gpu_alloc_env.arrays import FloatArray, IntArray
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


@njit(cache=True)
def _encode(
    queued: IntArray,
    running: IntArray,
    arrival_rps: FloatArray,
    active: IntArray,
    starting: IntArray,
    draining: IntArray,
    kept_alive: IntArray,
    kv_used: IntArray,
    kv_total: IntArray,
    preemption_rps: FloatArray,
    oldest_wait_s: FloatArray,
    held_gpus: IntArray,
    time_s: FloatArray,
    phase_sin: FloatArray,
    phase_cos: FloatArray,
    in_flight: IntArray,
    size: FloatArray,
    static: FloatArray,
    request_slo_s: FloatArray,
    scales: FloatArray,
    out: NDArray[np.float32],
) -> None:
    """The features of :data:`AGENT_FEATURES` and :data:`GLOBAL_FEATURES` into ``out`` (B, size).

    ``scales`` = (capacity_gpus, episode_length_s); arithmetic in float64, as NumPy would do it.
    """
    capacity, length_s = scales[0], scales[1]
    features = len(AGENT_FEATURES)
    for b in range(queued.shape[0]):
        for n in range(queued.shape[1]):
            row = n * features
            x = np.float64(queued[b, n])
            out[b, row] = x / (x + QUEUE_SCALE)
            x = np.float64(running[b, n])
            out[b, row + 1] = x / (x + RUNNING_SCALE)
            x = arrival_rps[b, n]
            out[b, row + 2] = x / (x + RATE_SCALE_RPS)
            out[b, row + 3] = active[b, n] * size[n] / capacity
            out[b, row + 4] = starting[b, n] * size[n] / capacity
            out[b, row + 5] = draining[b, n] * size[n] / capacity
            out[b, row + 6] = kept_alive[b, n] * size[n] / capacity
            total = np.float64(kv_total[b, n])
            out[b, row + 7] = kv_used[b, n] / total if total > 0 else 0.0
            x = preemption_rps[b, n]
            out[b, row + 8] = x / (x + RATE_SCALE_RPS)
            out[b, row + 9] = static[n, 0]
            out[b, row + 10] = static[n, 1]
            out[b, row + 11] = static[n, 2]
            x = oldest_wait_s[b, n] / request_slo_s[n]
            out[b, row + 12] = x / (x + 1.0)
        glob = queued.shape[1] * features
        out[b, glob] = min(max(1.0 - held_gpus[b] / capacity, 0.0), 1.0)
        out[b, glob + 1] = min(max(time_s[b] / length_s, 0.0), 1.0)
        out[b, glob + 2] = phase_sin[b]
        out[b, glob + 3] = phase_cos[b]
        x = np.float64(in_flight[b])
        out[b, glob + 4] = x / (x + IN_FLIGHT_SCALE)


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
        """(B, size) observation of every environment of ``view`` (one compiled pass)."""
        cfg = self.config
        b = view.time_s.shape[0]
        out = np.empty((b, self.size), dtype=np.float32)
        if cfg.workload.pattern == "diurnal":
            phase_sin, phase_cos = np.sin(view.diurnal_phase_rad), np.cos(view.diurnal_phase_rad)
        else:
            phase_sin = phase_cos = np.zeros(b)
        _encode(
            view.queued, view.running, view.arrival_rps, view.active, view.starting, view.draining,
            view.kept_alive, view.kv_used_blocks, view.kv_total_blocks, view.preemption_rps,
            view.oldest_wait_s, view.held_gpus, view.time_s, phase_sin, phase_cos, view.tasks_in_flight,
            self.gpus_per_replica, self._static, self.request_slo_s,
            np.array([self.capacity_gpus, cfg.episode_length_s]), out,
        )  # fmt: skip
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
