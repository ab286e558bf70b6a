"""The Gymnasium environment: a thin adapter over a batch-of-one :class:`BatchSimulator`."""

from __future__ import annotations

from collections import deque
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.metrics import episode_metrics, step_metrics
from gpu_alloc_env.core.reward import reward_components
from gpu_alloc_env.core.simulator import REPAIR_KINDS, StepStats
from gpu_alloc_env.observation import ObservationLayout
from gpu_alloc_env.render import render_ansi, render_rgb
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.trace_replay import simulator_for

ObsType = NDArray[np.float32]
ActType = NDArray[np.floating]


def resolve_scenario(scenario: str | ScenarioConfig, overrides: dict[str, Any]) -> ScenarioConfig:
    """A preset name or a config, with ``overrides`` applied (validated)."""
    if isinstance(scenario, ScenarioConfig):
        return scenario.replace(**overrides) if overrides else scenario
    if isinstance(scenario, str):
        return make_scenario(scenario, **overrides)
    raise TypeError(
        f"scenario must be a preset name or a ScenarioConfig, got {scenario!r} of type "
        f"{type(scenario).__name__}"
    )


def replica_space(config: ScenarioConfig) -> spaces.Box[np.float32]:
    """One environment's action space: ``Box(0, max_replicas, (N,), float32)``."""
    max_replicas = np.array([a.max_replicas for a in config.agents], dtype=np.float32)
    return spaces.Box(low=np.zeros(config.num_agents, np.float32), high=max_replicas, dtype=np.float32)


def preview(values: Any, limit: int = 8) -> str:
    """``values`` (a list or array) for an error message: at most ``limit`` of them, then how many more."""
    items = list(np.asarray(values).ravel().tolist()) if not isinstance(values, list) else values
    shown = ", ".join(repr(v) for v in items[:limit])
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return f"[{shown}{more}]"


def validate_replicas(
    action: Any,
    config: ScenarioConfig,
    num_envs: int | None = None,
    rows: NDArray[np.bool_] | None = None,
) -> NDArray[np.float64]:
    """``action`` as a float64 copy of shape (N,), or (``num_envs``, N); a clear error if it is not one.

    A copy, so that ``info["requested_replicas"]`` keeps what was asked if the caller reuses its array.
    ``rows`` (B,) limits the finiteness check to the rows of the environments that will use them.
    """
    raw = np.asarray(action)
    if raw.dtype.kind not in "iuf":
        raise ValueError(
            f"action {preview(raw) if raw.dtype.kind != 'O' else type(action).__name__} has dtype "
            f"{raw.dtype}; pass real replica counts (an int or float array), not strings, booleans or "
            "complex numbers"
        )
    array = np.array(raw, dtype=np.float64)
    n = config.num_agents
    shape = (n,) if num_envs is None else (num_envs, n)
    if array.shape != shape:
        per = "" if num_envs is None else f"{num_envs} rows (one per environment) of "
        raise ValueError(
            f"action has shape {array.shape}, expected {shape}: {per}one desired replica count per agent "
            f"{preview([a.name for a in config.agents])}"
        )
    checked = array if rows is None else array[rows]
    if not np.all(np.isfinite(checked)):
        where = np.argwhere(~np.isfinite(array if rows is None else np.where(rows[:, None], array, 0.0)))
        raise ValueError(
            f"action {preview(array)} contains NaN or infinity (first at index {tuple(where[0].tolist())}, "
            f"{len(where)} in all); pass finite replica counts (check the policy's output)"
        )
    return array


class GpuAllocEnv(gym.Env[ObsType, ActType]):
    """Allocate serverless GPUs, in replicas, among the agents of an LLM multi-agent system.

    ## Description
    A coordinator LLM plans each user task, fans it out to the specialist LLMs it needs and
    aggregates their answers; every agent is a model served by replicas (its model on
    ``tensor_parallel`` whole GPUs) on a serverless GPU platform. Every ``decision_interval_s``
    simulated seconds the agent decides how many replicas each LLM agent holds. Each replica runs a
    continuous-batching engine iteration by iteration, with a KV cache that limits its batch
    (requests wait, or are preempted and recomputed, when it is full); a new replica serves only
    after its cold start (container start, weight load from the platform's storage tier, engine
    start-up), billed; a released replica stays warm for the platform's keep-alive window, billed
    and holding its GPUs; every replica's lifetime is billed rounded up as the platform bills.
    Requests carry token counts; TTFT, time per output token and latency are measured per request,
    and latency end to end per task. The physics and every parameter are in ``docs/MODEL.md``.

    ## Action Space
    ``Box(0, max_replicas, (N,), float32)``: the replicas desired for each agent, in agent order
    (agent 0 is the coordinator). Any finite action is made feasible: clipped to
    ``[0, max_replicas]`` and rounded to whole replicas (halves up); if the pool cannot hold them,
    scale-ups are cut (one replica first for each agent that has none, highest priority first, then
    one at a time in priority order; other agents' kept-alive replicas are stopped to make room
    first).
    ``info["repairs"]`` says which agents each repair touched; ``info["action_repair_replicas"]``
    is the L1 distance from the request. An action of the wrong shape, or with NaN or infinity,
    raises ``ValueError``.

    ## Observation Space
    ``Box(low, high, (13 N + 5,), float32)``, thirteen features per agent then five global ones;
    unbounded counts are squashed as ``x / (x + scale)`` (invertible:
    :meth:`ObservationLayout.decode` reads them back in natural units).

    | Index          | Observation                                                        | Min | Max |
    |----------------|--------------------------------------------------------------------|-----|-----|
    | 13 n + 0       | requests waiting in the agent's queue, scale 10                    | 0   | 1   |
    | 13 n + 1       | requests in its replicas' batches, scale 32                        | 0   | 1   |
    | 13 n + 2       | recent request arrival rate, scale 1 request/s                     | 0   | 1   |
    | 13 n + 3 ... 6 | GPUs of serving, starting, draining, kept-alive replicas / capacity | 0   | 1   |
    | 13 n + 7       | KV-cache use of its serving and draining replicas                  | 0   | 1   |
    | 13 n + 8       | recent preemption rate, scale 1 per s                              | 0   | 1   |
    | 13 n + 9       | ``tensor_parallel`` / capacity                                     | 0   | 1   |
    | 13 n + 10      | min(``max_replicas`` x ``tensor_parallel``, capacity) / capacity    | 0   | 1   |
    | 13 n + 11      | priority / largest priority                                        | 0   | 1   |
    | 13 n + 12      | SLO pressure: head-of-queue age / ``request_slo_s``, scale 1       | 0   | 1   |
    | 13 N + 0       | free GPUs / capacity                                               | 0   | 1   |
    | 13 N + 1       | episode progress                                                   | 0   | 1   |
    | 13 N + 2, + 3  | sin, cos of the diurnal phase (0 for other workloads)              | -1  | 1   |
    | 13 N + 4       | tasks in flight, scale 100                                         | 0   | 1   |

    "Recent" rates are exponentially weighted with time constant ``rate_window_s``.

    ## Rewards
    The negative of the interval's dollar cost, in units of the price of the whole pool for one
    interval, as four named components (``info["reward_components"]``):
    ``cost`` = -``cost_weight`` x dollars billed; ``delay`` = -``delay_usd_per_task_s`` x task-seconds
    spent in the system during the interval; ``slo`` = -``slo_miss_usd`` x tasks completed later
    than ``task_slo_s``; ``goodput`` = -``goodput_miss_usd`` (0 unless set) x requests completed
    past their agent's ``ttft_slo_s`` or ``tpot_slo_s``.

    ## Starting State
    Every agent scaled to zero, queues empty; the workload (arrivals, which specialists each task
    calls, token counts) is drawn from the seed and does not depend on the actions.

    ## Episode End
    Truncation after ``episode_length_s`` simulated seconds (``episode_length_s /
    decision_interval_s`` steps). There is no termination. The final step's
    ``info["episode_metrics"]`` holds the episode's metrics.

    ## Info
    Every step: ``reward_components``, ``metrics`` (the interval's additive quantities: tasks
    arrived, completed and in flight, the sum of completed tasks' latencies, SLO misses, delay,
    requests arrived and completed, requests completed outside goodput, output tokens, dollars,
    busy and billed GPU-seconds, allocated share of capacity, cold starts, preemptions, re-queued,
    truncated and evicted counts, queued and running requests per agent), ``replicas`` (the
    replicas starting or serving after the allocation), ``requested_replicas``, ``repairs`` and
    ``action_repair_replicas``.

    ## Arguments
    | Argument        | Default   | Meaning                                                   |
    |-----------------|-----------|-----------------------------------------------------------|
    | ``scenario``    | "paper"   | preset name (``gpu_alloc_env.SCENARIOS``) or a config     |
    | ``render_mode`` | None      | ``"ansi"`` (text table) or ``"rgb_array"`` (picture)      |
    | ``**overrides`` |           | ``ScenarioConfig`` fields; ``workload``, ``reward``, ``gpu``, |
    |                 |           | ``platform`` and ``agents`` also take mappings of fields  |

    ```python
    import gymnasium as gym
    import gpu_alloc_env  # registers the environments
    env = gym.make("GpuAlloc-v1", capacity_gpus=24, workload={"task_rate_tps": 5.0})
    ```

    ## Version History
    * v1: serving physics. Agents hold whole replicas of their model on ``tensor_parallel`` GPUs;
      each replica runs iteration-level continuous batching with chunked prefill and a KV cache
      (admission, preemption and recomputation), with iteration times from a roofline fitted to
      profiled hardware; cold starts are container start + weight load from a storage tier +
      engine start-up; scale-downs drain or kill; keep-alive holds whole replicas, counted against
      the capacity; billing rounds each replica's lifetime up as the platform does. The action is
      replicas per agent; the observation gains batch, KV-cache, preemption and replica-state
      features. v0 and its fluid queue are removed.
    * v0: initial release (fluid FIFO service on fractional GPUs).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        scenario: str | ScenarioConfig = "paper",
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of "
                f"{self.metadata['render_modes']} or None"
            )
        self.config = resolve_scenario(scenario, overrides)
        self.render_mode = render_mode
        self.sim = simulator_for(self.config, batch_size=1)
        self.layout = ObservationLayout(self.config)
        self.action_space = replica_space(self.config)
        low, high = self.layout.bounds()
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self._history: deque[NDArray[np.float64]] = deque(maxlen=392)
        self._reset_done = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Start an episode with every agent scaled to zero; ``seed`` fixes the workload."""
        super().reset(seed=seed)
        self.sim.reset_env(0, self.np_random)
        self._history.clear()
        self._reset_done = True
        return self.layout.encode(self.sim.view(copy=False))[0], {"time_s": 0.0}

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply the desired replicas for one decision interval."""
        if not self._reset_done:
            raise RuntimeError("call reset() before step()")
        desired = validate_replicas(action, self.config)
        stats = self.sim.step(desired[None, :])
        components = self._reward_components(stats)
        reward = float(sum(components.values()))
        truncated = bool(self.sim.done[0])
        info = self._step_info(stats, desired, components)
        if truncated:
            info["episode_metrics"] = episode_metrics(self.sim, 0)
            self._reset_done = False
        if self.render_mode == "rgb_array":
            self._history.append(stats.replicas[0] * self.sim.gpus_per_replica)
        return self.layout.encode(self.sim.view(copy=False))[0], reward, False, truncated, info

    def _reward_components(self, stats: StepStats) -> dict[str, float]:
        return {name: float(value[0]) for name, value in reward_components(self.config, stats).items()}

    def _step_info(
        self, stats: StepStats, desired: NDArray[np.float64], components: dict[str, float]
    ) -> dict[str, Any]:
        metrics = {
            name: value[0].item() if value.ndim == 1 else value[0]
            for name, value in step_metrics(self.sim, stats).items()
        }
        # The step's statistics are arrays of their own (not the simulator's live state): no copies.
        return {
            "reward_components": components,
            "metrics": metrics,
            "replicas": stats.replicas[0],
            "requested_replicas": desired,
            "repairs": {kind: stats.repairs[kind][0] for kind in REPAIR_KINDS},
            "action_repair_replicas": float(stats.repair_replicas[0]),
        }

    def render(self) -> str | NDArray[np.uint8] | None:
        """The current state as a text table (``ansi``) or a picture (``rgb_array``)."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='ansi' or 'rgb_array' "
                "to the constructor or gym.make"
            )
            return None
        if not any(stream is not None for stream in self.sim.streams):
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "ansi":
            return render_ansi(self.sim, 0)
        return render_rgb(self.sim, list(self._history), 0)
