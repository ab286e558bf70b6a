"""Named scenario presets.

Every parameter is justified, with its source, in ``docs/MODEL.md``. The GPUs are H100 80GB on
RunPod's serverless platform; every agent serves a catalogue model in bf16 with vLLM's defaults, and
its serving speed, KV cache and cold start come from :mod:`gpu_alloc_env.serving`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpu_alloc_env.config import AgentSpec, ConfigError, ScenarioConfig, WorkloadSpec


def paper_agents() -> tuple[AgentSpec, ...]:
    """The four heterogeneous agents: a light coordinator and three specialists of different weight."""
    return (
        AgentSpec(
            name="coordinator",
            role="coordinator",
            model="llama-3.1-8b",
            tensor_parallel=1,
            max_replicas=4,
            priority=3.0,
            request_slo_s=10.0,
            input_tokens_mean=1_155.0,
            input_tokens_cv=0.53,
            output_tokens_mean=100.0,
            output_tokens_cv=0.8,
        ),
        AgentSpec(
            name="reasoning",
            role="specialist",
            model="llama-3.3-70b",
            tensor_parallel=4,
            max_replicas=2,
            priority=2.0,
            request_slo_s=50.0,
            input_tokens_mean=1_500.0,
            input_tokens_cv=0.5,
            output_tokens_mean=250.0,
            output_tokens_cv=1.0,
            invoke_probability=0.6,
        ),
        AgentSpec(
            name="code",
            role="specialist",
            model="qwen2.5-32b",
            tensor_parallel=1,
            max_replicas=6,
            priority=2.0,
            request_slo_s=30.0,
            input_tokens_mean=2_048.0,
            input_tokens_cv=0.97,
            output_tokens_mean=200.0,
            output_tokens_cv=1.0,
            invoke_probability=0.5,
        ),
        AgentSpec(
            name="retrieval",
            role="specialist",
            model="qwen2.5-14b",
            tensor_parallel=1,
            max_replicas=4,
            priority=1.0,
            request_slo_s=20.0,
            input_tokens_mean=2_500.0,
            input_tokens_cv=0.6,
            output_tokens_mean=150.0,
            output_tokens_cv=0.8,
            invoke_probability=0.7,
        ),
    )


def paper() -> ScenarioConfig:
    """Four agents, steady Poisson tasks; loaded but not overloaded under a good allocator."""
    return ScenarioConfig(
        name="paper",
        agents=paper_agents(),
        workload=WorkloadSpec(pattern="steady", task_rate_tps=3.5),
        gpu="h100-80gb",
        platform="runpod",
        capacity_gpus=16,
    )


def bursty() -> ScenarioConfig:
    """The paper's agents under a Markov-modulated Poisson workload: 3x bursts of about 30 s."""
    return paper().replace(
        name="bursty",
        workload={
            "pattern": "bursty",
            "burst_peak_to_mean": 3.0,
            "burst_mean_high_s": 30.0,
            "burst_mean_low_s": 120.0,
        },
    )


def diurnal() -> ScenarioConfig:
    """The paper's agents under a sinusoidal day (compressed to the 600 s episode), +-60%."""
    return paper().replace(
        name="diurnal",
        workload={"pattern": "diurnal", "diurnal_period_s": 600.0, "diurnal_amplitude": 0.6},
    )


def fleet(num_agents: int = 64) -> ScenarioConfig:
    """The paper's system scaled out: one coordinator and ``num_agents - 1`` specialists.

    Specialists cycle through the paper's three kinds; each kind's load per specialist, and the
    capacity per agent, stay those of ``paper``: the task rate and the capacity grow with the number
    of specialists, and so does the coordinator's ``max_replicas``. Used to measure how the
    simulator and the baselines scale with N.
    """
    if not isinstance(num_agents, int) or num_agents < 2:
        raise ConfigError(f"fleet needs an int num_agents >= 2, got {num_agents!r}")
    base = paper()
    coordinator, *kinds = base.agents
    specialists = num_agents - 1
    scale = specialists / len(kinds)
    agents = [coordinator.replace(max_replicas=max(coordinator.max_replicas, round(4.0 * scale)))]
    for i in range(specialists):
        kind = kinds[i % len(kinds)]
        agents.append(
            kind.replace(
                name=f"{kind.name}-{i}",
                invoke_probability=min(1.0, kind.invoke_probability / scale),
            )
        )
    return base.replace(
        name=f"fleet{num_agents}",
        agents=tuple(agents),
        capacity_gpus=round(base.capacity_gpus * max(scale, 1.0)),
        workload={"task_rate_tps": base.workload.task_rate_tps * scale},
    )


TRACE_TASK_RATE_TPS = 3.5
"""Mean task rate of the trace scenarios: ``paper``'s, so that their load is comparable."""
TRACE_RATE_RPS = {"conv": 5.53, "code": 2.57}
"""Mean request rates of the bundled traces over their spans (``Trace.rate_rps``, rounded)."""


def trace_scenario(trace: str, split: str = "train") -> ScenarioConfig:
    """The paper's agents driven by the bundled Azure trace ``trace`` (``conv`` or ``code``).

    ``conv``: every conversation request is a task; its prompt is the coordinator's planning
    prompt and its answer the coordinator's final (aggregation) output. ``code``: every code
    request is a task that calls the code specialist with the request's prompt and output; the
    code service's bursts drive the code agent. Both are thinned or replicated (``load_scale``) to
    ``paper``'s mean of 3.5 tasks/s. ``split`` chooses the training part (the first 70% of the
    trace's span) or the held-out part (the rest).
    """
    if trace not in TRACE_RATE_RPS:
        raise ConfigError(f"unknown bundled trace {trace!r}; choose one of {sorted(TRACE_RATE_RPS)}")
    suffix = "" if split == "train" else f"-{split.replace('_', '-')}"
    return paper().replace(
        name=f"trace-{trace}{suffix}",
        workload={
            "pattern": "trace",
            "trace": {
                "source": trace,
                "tokens_agent": "coordinator" if trace == "conv" else "code",
                "load_scale": round(TRACE_TASK_RATE_TPS / TRACE_RATE_RPS[trace], 3),
                "split": split,
                "train_fraction": 0.7,
            },
        },
    )


def trace_twin(trace: str) -> ScenarioConfig:
    """The synthetic (``bursty``) twin of ``trace-<trace>``, fitted to its training part only.

    See :mod:`gpu_alloc_env.twin`; the fitted values are reported in ``results/twins.md``.
    """
    from gpu_alloc_env.twin import twin_scenario

    return twin_scenario(trace_scenario(trace), "bursty")


SCENARIOS: dict[str, Callable[..., ScenarioConfig]] = {
    "paper": paper,
    "bursty": bursty,
    "diurnal": diurnal,
    "trace-conv": lambda: trace_scenario("conv"),
    "trace-conv-held-out": lambda: trace_scenario("conv", "held_out"),
    "trace-code": lambda: trace_scenario("code"),
    "trace-code-held-out": lambda: trace_scenario("code", "held_out"),
    "trace-conv-twin": lambda: trace_twin("conv"),
    "trace-code-twin": lambda: trace_twin("code"),
    "fleet": fleet,
}
"""Preset name -> factory of its :class:`ScenarioConfig`."""

PRESET_PARAMETERS: dict[str, tuple[str, ...]] = {"fleet": ("num_agents",)}
"""Arguments of a preset's factory that :func:`make_scenario` accepts beside the config's fields."""


def make_scenario(name: str = "paper", /, **overrides: Any) -> ScenarioConfig:
    """The preset ``name`` with fields overridden (see :meth:`ScenarioConfig.replace`).

    ``name`` is positional-only, so ``make_scenario("paper", name="mine")`` renames the copy. A
    preset's own parameters (:data:`PRESET_PARAMETERS`) go to its factory:
    ``make_scenario("fleet", num_agents=256)``.
    """
    if name not in SCENARIOS:
        raise ConfigError(f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}")
    parameters = {key: overrides.pop(key) for key in PRESET_PARAMETERS.get(name, ()) if key in overrides}
    config = SCENARIOS[name](**parameters)
    return config.replace(**overrides) if overrides else config
