"""Provisioned deployments: one constant allocation in whole replicas, held for the whole episode.

This is what a platform engineer deploys without an autoscaler. Two ways to choose the constant:

- :class:`ProvisionedPolicy` (``provisioned``): the best constant for the scenario, found by
  ``gpu-alloc tune`` on the tuning seeds against the scenario's reward and saved with the
  scenario's name (:mod:`gpu_alloc_env.baselines.tuned`), or replicas given by hand.
- :class:`ProvisionedErlangPolicy` (``provisioned_erlang``): sized from the mean offered load by the
  Erlang-C rule, for users without tuning runs. Each replica is taken as one server of rate
  ``mu``, the rate it sustains at ``latency_slack`` times a lone request's latency (the
  adaptive heuristic's sizing, :func:`sustainable_rate`); each agent gets the fewest replicas
  ``c`` whose Erlang-C probability that a request waits, ``C(c, lambda / mu)``, is at most
  ``wait_probability``. That is the square-root staffing rule of the Halfin-Whitt regime
  (``c`` close to ``a + beta sqrt(a)``) that call centres and capacity planners use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.baselines.adaptive import replica_rates_rps
from gpu_alloc_env.baselines.tuned import load_tuned
from gpu_alloc_env.config import ConfigError, ScenarioConfig
from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import FixedPolicy


def offered_request_rates(config: ScenarioConfig) -> NDArray[np.float64]:
    """(N,) mean requests per second each agent is offered, from the scenario's mean task rate.

    The coordinator serves a plan per task and an aggregation per task that calls a specialist;
    specialist ``n`` serves a call with its ``invoke_probability`` (1 for the specialist a trace
    drives). A trace scenario's mean task rate is ``workload.task_rate_tps``, the rate its
    ``load_scale`` is set for.
    """
    invoke = np.array([a.invoke_probability for a in config.agents[1:]], dtype=np.float64)
    trace = config.workload.trace
    if config.workload.pattern == "trace" and trace is not None and trace.tokens_agent != "coordinator":
        names = [a.name for a in config.agents]
        invoke[names.index(trace.tokens_agent) - 1] = 1.0
    rate = config.workload.task_rate_tps
    calls_any = 1.0 - float(np.prod(1.0 - invoke))
    return np.concatenate([[rate * (1.0 + calls_any)], rate * invoke])


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with ``servers`` and load ``a`` (Erlang C).

    1 when the queue is unstable (``a >= c``). Computed through the Erlang-B recursion, which is
    stable for any size.
    """
    if offered_erlangs <= 0.0:
        return 0.0
    if offered_erlangs >= servers:
        return 1.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_erlangs * blocking / (k + offered_erlangs * blocking)
    return servers * blocking / (servers - offered_erlangs * (1.0 - blocking))


def erlang_replicas(offered_erlangs: float, wait_probability: float, most: int) -> int:
    """The fewest servers (at least 1, at most ``most``) with Erlang-C wait probability <= target."""
    for servers in range(1, most + 1):
        if erlang_c(servers, offered_erlangs) <= wait_probability:
            return servers
    return most


class ProvisionedPolicy(FixedPolicy):
    """A constant allocation: the tuned best constant for the scenario, or ``replicas`` given.

    Args:
        config: the scenario, or the environment that has it.
        replicas: replicas per agent; ``None`` reads the scenario's tuned record.
        tuned_dir: a directory of tuned records searched before the package's own.

    Raises:
        ConfigError: ``replicas`` has the wrong length, is negative or fractional, or needs more
            GPUs than the pool; or no tuned record fits the scenario.
    """

    name = "provisioned"

    def __init__(
        self,
        config: ScenarioConfig | object,
        replicas: NDArray[np.floating] | list[float] | None = None,
        tuned_dir: Path | None = None,
    ) -> None:
        super().__init__(config)
        if replicas is None:
            record = load_tuned(self.config, self.name, tuned_dir)
            replicas = record.settings["replicas"]
            self.source = f"tuned on {record.tuned_on}, seeds {record.seeds[0]}..{record.seeds[-1]}"
        else:
            self.source = "given"
        self.replicas = check_replicas(self.config, replicas)

    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """The constant for every observation of the batch."""
        return np.tile(self.replicas, (obs.active_replicas.shape[0], 1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scenario={self.config.name!r}, replicas={self.replicas.tolist()})"


class ProvisionedErlangPolicy(ProvisionedPolicy):
    """The constant sized from the mean offered load by the Erlang-C rule (module docstring).

    When the sizes need more GPUs than the pool holds, replicas are taken back one at a time from
    the agent with the lowest priority that holds more than one (then from any), until they fit.

    Args:
        config: the scenario, or the environment that has it.
        wait_probability: the largest acceptable probability that a request waits.
        latency_slack: the latency, relative to a lone request's, at which a replica's rate is
            measured.
    """

    name = "provisioned_erlang"

    def __init__(
        self, config: ScenarioConfig | object, wait_probability: float = 0.2, latency_slack: float = 1.5
    ) -> None:
        if not 0.0 < wait_probability < 1.0:
            raise ValueError(f"wait_probability must lie in (0, 1), got {wait_probability!r}")
        if not latency_slack >= 1.0 or not np.isfinite(latency_slack):
            raise ValueError(f"latency_slack must be a finite number >= 1, got {latency_slack!r}")
        FixedPolicy.__init__(self, config)
        self.wait_probability = float(wait_probability)
        config = self.config
        self.replica_rate_rps = replica_rates_rps(config, latency_slack)
        offered = offered_request_rates(config) / self.replica_rate_rps
        sizes = np.array(
            [
                erlang_replicas(float(a), self.wait_probability, int(most))
                for a, most in zip(offered, self.max_replicas, strict=True)
            ],
            dtype=np.float64,
        )
        self.replicas = self._fit_pool(sizes)
        self.source = f"Erlang C, P(wait) <= {self.wait_probability:g}"

    def _fit_pool(self, sizes: NDArray[np.float64]) -> NDArray[np.float64]:
        """Take replicas back, lowest priority first, until the sizes fit the pool."""
        sizes = sizes.copy()
        for floor in (1.0, 0.0):
            for n in self.order[::-1]:
                while float(sizes @ self.gpus_per_replica) > self.capacity_gpus and sizes[n] > floor:
                    sizes[n] -= 1.0
        return sizes


def check_replicas(
    config: ScenarioConfig, replicas: NDArray[np.floating] | list[float]
) -> NDArray[np.float64]:
    """``replicas`` as a float array, after checking it is a feasible constant for ``config``."""
    values = np.asarray(replicas, dtype=np.float64)
    agents = config.agents
    if values.shape != (len(agents),):
        raise ConfigError(f"replicas needs one value per agent ({len(agents)}), got {values.tolist()}")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values != np.round(values)):
        raise ConfigError(f"replicas must be whole numbers >= 0, got {values.tolist()}")
    most = np.array([a.max_replicas for a in agents])
    if np.any(values > most):
        raise ConfigError(f"replicas {values.tolist()} exceed the agents' max_replicas {most.tolist()}")
    gpus = float(values @ np.array([a.tensor_parallel for a in agents]))
    if gpus > config.capacity_gpus:
        raise ConfigError(
            f"replicas {values.tolist()} need {gpus:g} GPUs, more than the pool's {config.capacity_gpus}"
        )
    return values
