"""Typed, frozen, validated configuration of a scenario.

A scenario is everything the simulator needs to know: the agents (their models, replica sizes and
latency objectives), the GPU type and pool, the serverless platform (price, billing, keep-alive,
cold-start tiers), the workload, the clock and the reward weights. Every field carries its unit in
its name. Construction validates every field and fails with
a message that names the offending value and says what to do; unknown fields are an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from gpu_alloc_env.data import TRACES
from gpu_alloc_env.errors import (
    ConfigError,
    build_checked,
    check_int,
    check_number,
    reject_unknown,
    replace_checked,
)
from gpu_alloc_env.serving.engine import GPU_MEMORY_UTILIZATION, KV_RESERVE_GIB, EngineSpec, build_engine
from gpu_alloc_env.serving.hardware import GpuSpec, resolve_gpu
from gpu_alloc_env.serving.models import DTYPES, MODELS, Dtype, ModelSpec, resolve_model
from gpu_alloc_env.serving.platforms import WEIGHT_SOURCES, PlatformSpec, WeightSource, resolve_platform

Role = Literal["coordinator", "specialist"]
Pattern = Literal["steady", "bursty", "diurnal", "trace"]
Split = Literal["train", "held_out", "all"]
TimestampUnit = Literal["auto", "datetime", "s", "ms"]
ScaleDown = Literal["drain", "kill"]

_ROLES: tuple[str, ...] = get_args(Role)
_PATTERNS: tuple[str, ...] = get_args(Pattern)
_SPLITS: tuple[str, ...] = get_args(Split)
_TIMESTAMP_UNITS: tuple[str, ...] = get_args(TimestampUnit)
_SCALE_DOWNS: tuple[str, ...] = get_args(ScaleDown)
TRACE_FILE_FIELDS = ("timestamp_column", "input_tokens_column", "output_tokens_column", "timestamp_unit")
"""The fields of :class:`TraceSpec` that describe a file; their defaults are the bundled traces' own."""
MAX_LOAD_SCALE = 100.0
"""Largest ``TraceSpec.load_scale``: every request replayed 100 times (the trace's requests are
held in memory once per replay)."""
TTFT_SLO_FACTOR = 3.0
"""A default ``AgentSpec.ttft_slo_s`` is this many times the TTFT of the agent's mean request on an
idle replica: Splitwise's (Patel et al., ISCA 2024) objective for the 90th percentile, TTFT at most
3x that of an unloaded system; 90% is the attainment DistServe (OSDI 2024) measures goodput at."""
TPOT_SLO_FACTOR = 1.5
"""A default ``AgentSpec.tpot_slo_s`` is this many times the TPOT of the agent's mean request on an
idle replica: Splitwise's 90th-percentile objective for the time between tokens, at most 1.5x that
of an unloaded system."""

_reject_unknown = reject_unknown
_build = build_checked
_replace_checked = replace_checked

__all__ = [
    "AgentSpec",
    "ConfigError",
    "Deployment",
    "RewardSpec",
    "ScenarioConfig",
    "TraceSpec",
    "WorkloadSpec",
]


def _coerce_numbers(instance: object, owner: str, rules: Mapping[str, dict[str, Any]]) -> None:
    """Validate numeric fields of a frozen dataclass and store them as floats."""
    for name, rule in rules.items():
        number = check_number(owner, name, getattr(instance, name), **rule)
        object.__setattr__(instance, name, number)


def _check_choice(owner: str, name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{owner}.{name} must be one of {list(choices)}, got {value!r}")


@dataclass(frozen=True)
class AgentSpec:
    """One agent of the multi-agent system: a model served by replicas on whole GPUs.

    A replica is the agent's model on ``tensor_parallel`` GPUs of the scenario's GPU type, running a
    continuous-batching engine (:mod:`gpu_alloc_env.serving`). The engine fields default to vLLM's
    (``max_num_seqs`` and ``max_num_batched_tokens`` by GPU type, ``gpu_memory_utilization`` 0.9).
    """

    name: str
    role: Role
    model: str | ModelSpec
    """A catalogue model (:data:`gpu_alloc_env.serving.models.MODELS`), or a :class:`ModelSpec`
    (or a mapping of its fields) describing any dense transformer."""
    tensor_parallel: int
    """GPUs per replica; the heads must split evenly over them."""
    max_replicas: int
    """Most replicas the agent may hold; allocations are capped here."""
    priority: float
    """QoS weight (> 0); larger is more important."""
    request_slo_s: float
    """Latency objective of one request to this agent, arrival to completion."""
    input_tokens_mean: float
    """Mean prompt tokens of a request to this agent (log-normal)."""
    input_tokens_cv: float
    """Coefficient of variation of prompt tokens."""
    output_tokens_mean: float
    """Mean output tokens of a request to this agent (log-normal)."""
    output_tokens_cv: float
    """Coefficient of variation of output tokens."""
    invoke_probability: float = 1.0
    """Specialists: probability that a task calls this agent. Ignored for the coordinator."""
    dtype: Dtype = "bf16"
    """Weights and KV cache in ``bf16`` or ``fp8``."""
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION
    """Share of each GPU's memory the engine uses (weights, reserve and KV cache)."""
    kv_reserve_gib: float = KV_RESERVE_GIB
    """Memory per GPU kept out of the KV cache (activations, CUDA graphs, buffers)."""
    max_num_seqs: int | None = None
    """Most requests in a batch; ``None`` takes vLLM's default for the GPU."""
    max_num_batched_tokens: int | None = None
    """Tokens per iteration (chunked prefill budget); ``None`` takes vLLM's default for the GPU."""
    ttft_slo_s: float | None = None
    """Time-to-first-token objective of one request to this agent (arrival at the agent to its first
    token), for goodput (``RewardSpec.goodput_miss_usd``); ``None``: :data:`TTFT_SLO_FACTOR` times
    the TTFT of a mean request served alone on an idle replica."""
    tpot_slo_s: float | None = None
    """Time-per-output-token objective (after the first token) of one request to this agent, for
    goodput; ``None``: :data:`TPOT_SLO_FACTOR` times the TPOT of a mean request served alone."""

    def __post_init__(self) -> None:
        owner = f"AgentSpec({self.name!r})"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"AgentSpec.name must be a non-empty string, got {self.name!r}")
        _check_choice(owner, "role", self.role, _ROLES)
        _check_choice(owner, "dtype", self.dtype, DTYPES)
        object.__setattr__(self, "model", resolve_model(self.model))
        object.__setattr__(
            self, "tensor_parallel", check_int(owner, "tensor_parallel", self.tensor_parallel, minimum=1)
        )
        object.__setattr__(
            self, "max_replicas", check_int(owner, "max_replicas", self.max_replicas, minimum=1)
        )
        for name in ("max_num_seqs", "max_num_batched_tokens"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_int(owner, name, getattr(self, name), minimum=1))
        _coerce_numbers(
            self,
            owner,
            {
                name: {"positive": True}
                for name in ("ttft_slo_s", "tpot_slo_s")
                if getattr(self, name) is not None
            },
        )
        _coerce_numbers(
            self,
            owner,
            {
                "priority": {"positive": True},
                "request_slo_s": {"positive": True},
                "input_tokens_mean": {"positive": True},
                "input_tokens_cv": {"non_negative": True},
                "output_tokens_mean": {"positive": True},
                "output_tokens_cv": {"non_negative": True},
                "invoke_probability": {"non_negative": True, "at_most": 1.0},
                "gpu_memory_utilization": {"positive": True, "at_most": 1.0},
                "kv_reserve_gib": {"non_negative": True},
            },
        )

    @property
    def model_spec(self) -> ModelSpec:
        """The agent's model (``model`` resolved to a :class:`ModelSpec`)."""
        assert isinstance(self.model, ModelSpec)
        return self.model

    @property
    def max_gpus(self) -> int:
        """GPUs of ``max_replicas`` replicas."""
        return self.max_replicas * self.tensor_parallel

    def replace(self, **overrides: Any) -> AgentSpec:
        """A copy with some fields changed (validated; unknown fields are an error).

        ``model`` accepts a catalogue name, a :class:`ModelSpec`, or a mapping of its fields: without
        a ``name``, or with the current model's, they are merged into the current model; with a
        catalogue model's name, into that model; with any other name, they describe a new model
        (every field :class:`ModelSpec` requires).
        """
        resolved = dict(overrides)
        model = resolved.get("model")
        if isinstance(model, Mapping):
            name = model.get("name", self.model_spec.name)
            if name == self.model_spec.name:
                resolved["model"] = self.model_spec.replace(**model)
            elif isinstance(name, str) and name in MODELS:
                resolved["model"] = MODELS[name].replace(**model)
            else:
                resolved["model"] = resolve_model(model)
        return _replace_checked(self, resolved)


def _check_text(owner: str, name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{owner}.{name} must be a non-empty string, got {value!r}")


@dataclass(frozen=True)
class TraceSpec:
    """A request trace replayed as the task arrivals of a scenario (``WorkloadSpec.pattern="trace"``).

    Every request of the trace becomes one task arriving at the request's timestamp; its input and
    output token counts become those of the request the task sends to ``tokens_agent`` (the
    coordinator: the planning prompt and the final answer; a specialist: that specialist's call,
    which every task then makes). Everything else about a task is drawn as in the synthetic
    workloads. The trace is split by time: the first ``train_fraction`` of its span is the training
    part, the rest the held-out part; an episode replays a window of ``episode_length_s /
    time_scale`` trace seconds that lies wholly inside ``split``, starting at an offset drawn from
    the episode's seed. The mapping is documented in ``docs/MODEL.md`` (section 1.9).
    """

    source: str
    """A bundled trace (``conv`` or ``code``) or the path of a CSV or JSON Lines file."""
    timestamp_column: str = "TIMESTAMP"
    input_tokens_column: str = "ContextTokens"
    output_tokens_column: str = "GeneratedTokens"
    timestamp_unit: TimestampUnit = "auto"
    """``datetime`` (ISO 8601 text), ``s`` or ``ms`` (numbers); ``auto`` accepts datetimes only, so
    that numbers are never read in the wrong unit."""
    tokens_agent: str = "coordinator"
    """The agent whose request carries the trace's token counts."""
    time_scale: float = 1.0
    """Simulated seconds per trace second: 0.5 replays the trace twice as fast (twice the rate)."""
    load_scale: float = 1.0
    """Multiplies the arrival rate without changing the trace's timing: each request is replayed
    ``floor(load_scale)`` times, plus once more with probability ``load_scale % 1`` (0.6 keeps a
    random 60% of the requests); at most :data:`MAX_LOAD_SCALE`."""
    split: Split = "train"
    """Which part of the trace episodes replay: ``train``, ``held_out`` or ``all``."""
    train_fraction: float = 0.7
    """Share of the trace's span, from its start, that is the training part."""

    def __post_init__(self) -> None:
        owner = "TraceSpec"
        for name in ("source", "timestamp_column", "input_tokens_column", "output_tokens_column"):
            _check_text(owner, name, getattr(self, name))
        _check_text(owner, "tokens_agent", self.tokens_agent)
        _check_choice(owner, "timestamp_unit", self.timestamp_unit, _TIMESTAMP_UNITS)
        _check_choice(owner, "split", self.split, _SPLITS)
        _coerce_numbers(
            self,
            owner,
            {"time_scale": {"positive": True}, "load_scale": {"positive": True, "at_most": MAX_LOAD_SCALE}},
        )
        if self.source in TRACES:
            defaults = {f.name: f.default for f in fields(self)}
            custom = {n: getattr(self, n) for n in TRACE_FILE_FIELDS if getattr(self, n) != defaults[n]}
            if custom:
                raise ConfigError(
                    f"TraceSpec: the bundled trace {self.source!r} has its own columns, so {custom} would "
                    "be ignored; these fields describe a file of your own (pass its path as source), "
                    "so leave them out for a bundled trace"
                )
        number = check_number(owner, "train_fraction", self.train_fraction, positive=True)
        if number >= 1.0:
            raise ConfigError(
                f"TraceSpec.train_fraction must be in (0, 1), got {number!r}; for example 0.7 trains "
                "on the first 70% of the trace and holds out the rest"
            )
        object.__setattr__(self, "train_fraction", number)

    def replace(self, **overrides: Any) -> TraceSpec:
        """A copy with some fields changed (validated; unknown fields are an error)."""
        return _replace_checked(self, overrides)


@dataclass(frozen=True)
class WorkloadSpec:
    """How user tasks arrive.

    ``steady`` is a Poisson process at ``task_rate_tps``. ``bursty`` is a two-state Markov-modulated
    Poisson process whose high state runs at ``burst_peak_to_mean`` times the mean rate, with
    exponential state durations; the low-state rate is set so that the long-run mean stays
    ``task_rate_tps``. ``diurnal`` modulates the rate as
    ``task_rate_tps * (1 + diurnal_amplitude * sin(2 pi t / diurnal_period_s + phase))`` with a
    phase drawn per episode. ``trace`` replays the request trace described by ``trace``
    (:class:`TraceSpec`); the rate fields do not apply to it.
    """

    pattern: Pattern = "steady"
    task_rate_tps: float = 1.0
    """Mean task arrival rate, tasks per second."""
    burst_peak_to_mean: float = 3.0
    burst_mean_high_s: float = 30.0
    burst_mean_low_s: float = 120.0
    diurnal_period_s: float = 600.0
    diurnal_amplitude: float = 0.6
    aggregate_output_tokens_mean: float = 200.0
    """Mean output tokens of the coordinator's aggregation request (log-normal)."""
    aggregate_output_tokens_cv: float = 1.0
    trace: TraceSpec | None = None
    """The replayed trace; required when ``pattern`` is ``trace`` and only then."""

    def __post_init__(self) -> None:
        owner = "WorkloadSpec"
        _check_choice(owner, "pattern", self.pattern, _PATTERNS)
        if isinstance(self.trace, Mapping):
            object.__setattr__(self, "trace", _build(TraceSpec, self.trace, "workload.trace"))
        if self.trace is not None and not isinstance(self.trace, TraceSpec):
            raise ConfigError(
                f"WorkloadSpec.trace must be a TraceSpec or a mapping of its fields, got {self.trace!r}"
            )
        if self.pattern == "trace" and self.trace is None:
            raise ConfigError(
                "WorkloadSpec.pattern='trace' needs a trace; pass trace={'source': 'conv'} (a bundled "
                "trace) or trace={'source': 'path/to/requests.csv'}"
            )
        if self.pattern != "trace" and self.trace is not None:
            raise ConfigError(
                f"WorkloadSpec.trace is set but pattern is {self.pattern!r}; set pattern='trace' to "
                "replay it, or trace=None"
            )
        _coerce_numbers(
            self,
            owner,
            {
                "task_rate_tps": {"positive": True},
                "burst_peak_to_mean": {"positive": True},
                "burst_mean_high_s": {"positive": True},
                "burst_mean_low_s": {"positive": True},
                "diurnal_period_s": {"positive": True},
                "diurnal_amplitude": {"non_negative": True, "at_most": 1.0},
                "aggregate_output_tokens_mean": {"positive": True},
                "aggregate_output_tokens_cv": {"non_negative": True},
            },
        )
        if self.burst_peak_to_mean < 1.0:
            raise ConfigError(f"WorkloadSpec.burst_peak_to_mean must be >= 1, got {self.burst_peak_to_mean}")
        if self.burst_low_rate_tps < 0.0:
            high_share = self.burst_high_share
            raise ConfigError(
                f"WorkloadSpec: burst_peak_to_mean={self.burst_peak_to_mean} with a high-state "
                f"share of {high_share:.3f} would need a negative low-state rate; lower "
                f"burst_peak_to_mean to at most {1.0 / high_share:.3f} or shorten burst_mean_high_s"
            )

    @property
    def burst_high_share(self) -> float:
        """Long-run fraction of time spent in the high (burst) state."""
        return self.burst_mean_high_s / (self.burst_mean_high_s + self.burst_mean_low_s)

    @property
    def burst_high_rate_tps(self) -> float:
        """Task rate in the burst state."""
        return self.task_rate_tps * self.burst_peak_to_mean

    @property
    def burst_low_rate_tps(self) -> float:
        """Task rate outside bursts, chosen so the long-run mean is ``task_rate_tps``."""
        share = self.burst_high_share
        return (self.task_rate_tps - share * self.burst_high_rate_tps) / (1.0 - share)

    def replace(self, **overrides: Any) -> WorkloadSpec:
        """A copy with some fields changed (validated; unknown fields are an error).

        ``trace`` accepts a mapping of :class:`TraceSpec` fields, merged into the current trace.
        """
        resolved = dict(overrides)
        if isinstance(resolved.get("trace"), Mapping) and self.trace is not None:
            resolved["trace"] = self.trace.replace(**resolved["trace"])
        return _replace_checked(self, resolved)


@dataclass(frozen=True)
class RewardSpec:
    """Weights that turn the step's named costs into a reward, in dollars.

    ``reward = -(cost_weight * cost_usd + delay_usd_per_task_s * delay_task_s + slo_miss_usd *
    slo_misses + goodput_miss_usd * goodput_misses) / reward_scale_usd`` where ``reward_scale_usd``
    is the price of the whole pool for one decision interval, so that holding every GPU for a step
    costs exactly 1.
    """

    cost_weight: float = 1.0
    """Multiplier on the dollars billed in the step."""
    delay_usd_per_task_s: float = 0.0005
    """Value of time: dollars charged per second a task spends in the system."""
    slo_miss_usd: float = 0.01
    """Dollars charged per task that finishes later than ``task_slo_s``."""
    goodput_miss_usd: float = 0.0
    """Dollars charged per request, of any agent, that completes without meeting its agent's
    ``ttft_slo_s`` and ``tpot_slo_s`` (a request outside goodput, as serving systems count it). 0,
    the default, leaves the reward as it was before the term existed."""

    def __post_init__(self) -> None:
        _coerce_numbers(
            self,
            "RewardSpec",
            {
                "cost_weight": {"non_negative": True},
                "delay_usd_per_task_s": {"non_negative": True},
                "slo_miss_usd": {"non_negative": True},
                "goodput_miss_usd": {"non_negative": True},
            },
        )

    def replace(self, **overrides: Any) -> RewardSpec:
        """A copy with some fields changed (validated; unknown fields are an error)."""
        return _replace_checked(self, overrides)


@dataclass(frozen=True)
class Deployment:
    """What a scenario resolves to: the platform's terms and every agent's engine.

    Fields left ``None`` in :class:`ScenarioConfig` take the platform's values here.
    """

    gpu: GpuSpec
    platform: PlatformSpec
    price_per_gpu_s: float
    billing_increment_s: float
    keep_alive_s: float
    weight_source: str
    engine_startup_s: float
    engines: tuple[EngineSpec, ...]
    """One per agent, in agent order."""
    ttft_slo_s: tuple[float, ...]
    """Each agent's TTFT objective: its ``ttft_slo_s``, or the default derived from its engine."""
    tpot_slo_s: tuple[float, ...]
    """Each agent's TPOT objective: its ``tpot_slo_s``, or the default derived from its engine."""


@dataclass(frozen=True)
class ScenarioConfig:
    """A complete, validated scenario. Agent 0 is the coordinator; the rest are specialists.

    GPUs come as whole replicas of each agent's model (``AgentSpec.tensor_parallel`` GPUs each) on one
    GPU type, from a pool of ``capacity_gpus`` on a serverless ``platform``. The platform sets the
    price, the billing increment, the keep-alive window and the cold-start tiers unless the fields
    below override them (``None`` takes the platform's).
    """

    name: str
    agents: tuple[AgentSpec, ...]
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    reward: RewardSpec = field(default_factory=RewardSpec)
    gpu: str | GpuSpec = "h100-80gb"
    """A catalogue GPU (:data:`gpu_alloc_env.serving.hardware.GPUS`) or a :class:`GpuSpec`."""
    platform: str | PlatformSpec = "runpod"
    """A catalogue platform (:data:`gpu_alloc_env.serving.platforms.PLATFORMS`) or a :class:`PlatformSpec`."""
    capacity_gpus: int = 12
    """The platform quota: at most this many GPUs held at once (starting, serving, draining or kept
    alive)."""
    price_per_gpu_s: float | None = None
    """Dollars per GPU-second; ``None`` takes the platform's price for the GPU."""
    billing_increment_s: float | None = None
    """A replica's lifetime is billed rounded up to a multiple of this; ``None``: the platform's."""
    keep_alive_s: float | None = None
    """Seconds a released replica stays warm (billed, holding its GPUs) for reuse; ``None``: the
    platform's idle timeout."""
    weight_source: WeightSource | None = None
    """Storage tier weights load from at a cold start (``remote``, ``ssd``, ``host_memory``);
    ``None``: the platform's."""
    engine_startup_s: float | None = None
    """Engine start-up after the weights load; ``None``: the platform's."""
    scale_down: ScaleDown = "drain"
    """A busy replica taken away ``drain``s (stops admitting, finishes its requests, billed) or is
    ``kill``ed (its requests go back to the front of the agent's queue and are recomputed)."""
    decision_interval_s: float = 1.0
    """Simulated seconds between allocation decisions."""
    episode_length_s: float = 600.0
    """Simulated span of an episode; it ends in truncation."""
    task_slo_s: float = 60.0
    """End-to-end latency objective of a task."""
    rate_window_s: float = 10.0
    """Time constant of the exponentially weighted arrival-rate estimates in the observation."""

    def __post_init__(self) -> None:
        owner = "ScenarioConfig"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"{owner}.name must be a non-empty string, got {self.name!r}")
        agents = tuple(self.agents) if isinstance(self.agents, (list, tuple)) else None
        if not agents or not all(isinstance(a, AgentSpec) for a in agents):
            raise ConfigError(
                f"{owner}.agents must be a non-empty sequence of AgentSpec, got {self.agents!r}"
            )
        object.__setattr__(self, "agents", agents)
        if not isinstance(self.workload, WorkloadSpec):
            raise ConfigError(f"{owner}.workload must be a WorkloadSpec, got {self.workload!r}")
        if not isinstance(self.reward, RewardSpec):
            raise ConfigError(f"{owner}.reward must be a RewardSpec, got {self.reward!r}")
        object.__setattr__(self, "gpu", resolve_gpu(self.gpu))
        object.__setattr__(self, "platform", resolve_platform(self.platform))
        object.__setattr__(
            self, "capacity_gpus", check_int(owner, "capacity_gpus", self.capacity_gpus, minimum=1)
        )
        _check_choice(owner, "scale_down", self.scale_down, _SCALE_DOWNS)
        if self.weight_source is not None:
            _check_choice(owner, "weight_source", self.weight_source, WEIGHT_SOURCES)
        optional = {
            "price_per_gpu_s": {"positive": True},
            "billing_increment_s": {"positive": True},
            "keep_alive_s": {"non_negative": True},
            "engine_startup_s": {"non_negative": True},
        }
        _coerce_numbers(self, owner, {k: v for k, v in optional.items() if getattr(self, k) is not None})
        _coerce_numbers(
            self,
            owner,
            {
                "decision_interval_s": {"positive": True},
                "episode_length_s": {"positive": True},
                "task_slo_s": {"positive": True},
                "rate_window_s": {"positive": True},
            },
        )
        self._check_agents(agents)
        self._check_clock()
        trace = self.workload.trace
        if trace is not None and trace.tokens_agent not in {a.name for a in agents}:
            raise ConfigError(
                f"TraceSpec.tokens_agent={trace.tokens_agent!r} is not an agent of this scenario; "
                f"choose one of {[a.name for a in agents]}"
            )
        object.__setattr__(self, "_deployment", self._resolve_deployment())

    def _resolve_deployment(self) -> Deployment:
        gpu = self.gpu_spec
        platform = self.platform_spec
        price = self.price_per_gpu_s if self.price_per_gpu_s is not None else platform.price_for(gpu.name)
        source = self.weight_source if self.weight_source is not None else platform.weight_source
        startup = self.engine_startup_s if self.engine_startup_s is not None else platform.engine_startup_s
        engines = []
        for agent in self.agents:
            engine = build_engine(
                owner=f"agent {agent.name!r}",
                model=agent.model_spec,
                gpu=gpu,
                tensor_parallel=agent.tensor_parallel,
                dtype=agent.dtype,
                gpu_memory_utilization=agent.gpu_memory_utilization,
                kv_reserve_gib=agent.kv_reserve_gib,
                max_num_seqs=agent.max_num_seqs,
                max_batched_tokens=agent.max_num_batched_tokens,
                platform=platform,
                weight_source=source,
                engine_startup_s=startup,
            )
            mean_tokens = agent.input_tokens_mean + agent.output_tokens_mean
            if engine.kv_capacity_tokens < mean_tokens:
                raise ConfigError(
                    f"agent {agent.name!r}: one replica's KV cache holds {engine.kv_capacity_tokens} tokens, "
                    f"less than a mean request ({mean_tokens:.0f}); raise tensor_parallel, use "
                    "dtype='fp8' or a GPU with more memory"
                )
            engines.append(engine)
        unloaded = [
            engine.lone_ttft_tpot_s(agent.input_tokens_mean, agent.output_tokens_mean)
            for agent, engine in zip(self.agents, engines, strict=True)
        ]
        return Deployment(
            gpu=gpu,
            platform=platform,
            price_per_gpu_s=price,
            billing_increment_s=(
                self.billing_increment_s
                if self.billing_increment_s is not None
                else platform.billing_increment_s
            ),
            keep_alive_s=self.keep_alive_s if self.keep_alive_s is not None else platform.keep_alive_s,
            weight_source=source,
            engine_startup_s=startup,
            engines=tuple(engines),
            ttft_slo_s=tuple(
                a.ttft_slo_s if a.ttft_slo_s is not None else TTFT_SLO_FACTOR * ttft
                for a, (ttft, _) in zip(self.agents, unloaded, strict=True)
            ),
            tpot_slo_s=tuple(
                a.tpot_slo_s if a.tpot_slo_s is not None else TPOT_SLO_FACTOR * tpot
                for a, (_, tpot) in zip(self.agents, unloaded, strict=True)
            ),
        )

    @property
    def deployment(self) -> Deployment:
        """The resolved platform terms and every agent's engine."""
        deployment: Deployment = self.__dict__["_deployment"]
        return deployment

    @property
    def gpu_spec(self) -> GpuSpec:
        """The GPU type (``gpu`` resolved)."""
        assert isinstance(self.gpu, GpuSpec)
        return self.gpu

    @property
    def platform_spec(self) -> PlatformSpec:
        """The platform (``platform`` resolved)."""
        assert isinstance(self.platform, PlatformSpec)
        return self.platform

    def _check_agents(self, agents: tuple[AgentSpec, ...]) -> None:
        if agents[0].role != "coordinator":
            raise ConfigError(
                f"ScenarioConfig.agents[0] must be the coordinator, got role {agents[0].role!r} "
                f"for agent {agents[0].name!r}; put the coordinator first"
            )
        extra = [a.name for a in agents[1:] if a.role == "coordinator"]
        if extra:
            raise ConfigError(f"only one coordinator is allowed; also found {extra}")
        names = [a.name for a in agents]
        if len(set(names)) != len(names):
            raise ConfigError(f"agent names must be unique, got {names}")
        for agent in agents:
            if agent.tensor_parallel > self.capacity_gpus:
                raise ConfigError(
                    f"agent {agent.name!r}: one replica needs tensor_parallel={agent.tensor_parallel} GPUs, "
                    f"more than capacity_gpus={self.capacity_gpus}; it could never be served"
                )

    def _check_clock(self) -> None:
        if self.decision_interval_s < 1e-3:
            raise ConfigError(f"decision_interval_s={self.decision_interval_s} is below 1 ms; use >= 0.001")
        steps = self.episode_length_s / self.decision_interval_s
        if steps < 1.0 or abs(steps - round(steps)) > 1e-6:
            raise ConfigError(
                f"episode_length_s={self.episode_length_s} must be a whole, positive number of "
                f"decision intervals ({self.decision_interval_s} s); got {steps:.6g} intervals"
            )

    @property
    def num_agents(self) -> int:
        """Number of agents N."""
        return len(self.agents)

    @property
    def episode_steps(self) -> int:
        """Decisions per episode."""
        return round(self.episode_length_s / self.decision_interval_s)

    @property
    def reward_scale_usd(self) -> float:
        """Dollars of one decision interval of the whole pool (the reward's unit)."""
        return self.capacity_gpus * self.deployment.price_per_gpu_s * self.decision_interval_s

    def replace(self, **overrides: Any) -> ScenarioConfig:
        """A copy with fields overridden.

        ``workload``, ``reward``, ``gpu`` and ``platform`` accept a mapping of their own fields,
        merged into the current values (``platform={"keep_alive_s": 30}`` keeps the rest of the
        platform). ``agents`` accepts a sequence of :class:`AgentSpec` (or mappings of all their
        fields) replacing the agents, or a mapping ``{agent_name: {field: value}}`` changing some
        fields of named agents. Unknown fields or agent names are an error.
        """
        resolved = dict(overrides)
        if isinstance(resolved.get("workload"), Mapping):
            resolved["workload"] = self.workload.replace(**resolved["workload"])
        if isinstance(resolved.get("gpu"), Mapping):
            resolved["gpu"] = self.gpu_spec.replace(**resolved["gpu"])
        if isinstance(resolved.get("platform"), Mapping):
            resolved["platform"] = self.platform_spec.replace(**resolved["platform"])
        if isinstance(resolved.get("reward"), Mapping):
            resolved["reward"] = self.reward.replace(**resolved["reward"])
        if "agents" in resolved:
            resolved["agents"] = self._resolve_agents(resolved["agents"])
        return _replace_checked(self, resolved)

    def _resolve_agents(self, value: Any) -> tuple[AgentSpec, ...]:
        if isinstance(value, Mapping):
            by_name = {a.name: a for a in self.agents}
            unknown = sorted(set(value) - set(by_name))
            if unknown:
                raise ConfigError(
                    f"unknown agent name(s) {unknown} in agents override; agents are {list(by_name)}"
                )
            for name, fields_ in value.items():
                if not isinstance(fields_, Mapping):
                    raise ConfigError(
                        f"agents override for {name!r} must be a mapping of AgentSpec fields, got "
                        f"{fields_!r}; write for example agents={{{name!r}: {{'max_replicas': 3}}}}"
                    )
            return tuple(a.replace(**value[a.name]) if a.name in value else a for a in self.agents)
        if isinstance(value, (list, tuple)):
            specs = []
            for item in value:
                if isinstance(item, AgentSpec):
                    specs.append(item)
                elif isinstance(item, Mapping):
                    specs.append(_build(AgentSpec, item, f"agent {item.get('name', '?')!r}"))
                else:
                    raise ConfigError(f"agents override items must be AgentSpec or mappings, got {item!r}")
            return tuple(specs)
        raise ConfigError(
            f"agents override must be a sequence of AgentSpec or a mapping of agent name to "
            f"field overrides, got {value!r}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for saving with a run)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioConfig:
        """The config :meth:`to_dict` produced (validated; unknown fields are an error)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a scenario must be a mapping of its fields, got {data!r}")
        _reject_unknown(cls.__name__, {f.name for f in fields(cls)}, data)
        values = dict(data)
        agents = values.get("agents", ())
        if not isinstance(agents, (list, tuple)):
            raise ConfigError(f"agents must be a list of agent mappings, got {agents!r}")
        values["agents"] = tuple(_build(AgentSpec, agent, f"agents[{i}]") for i, agent in enumerate(agents))
        if "workload" in values:
            values["workload"] = _build(WorkloadSpec, values["workload"], "workload")
        if "reward" in values:
            values["reward"] = _build(RewardSpec, values["reward"], "reward")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"invalid scenario mapping: {exc}; pass what to_dict() produces") from exc
