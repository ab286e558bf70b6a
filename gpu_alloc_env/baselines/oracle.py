"""The offline limit: a clairvoyant policy that knows the episode's arrivals before they happen.

Before an episode the evaluation harness calls :meth:`ClairvoyantPolicy.start_episode` with the
environment and the seed. The policy starts a private twin of the episode: the same scenario and
seed, so the same workload (which does not depend on the allocation), stepped with the same
actions, so the same state. Every ``window_s`` it tries candidate allocations on copies of the
twin, each held for the window and ``lookahead_s`` after it, with the true physics and the true
future arrivals, and keeps the one with the highest return:

- the allocation it holds now;
- one replica more, or one fewer, for each agent in turn;
- the scenario's tuned constant (``provisioned``), when the package has one;
- the first window of the plan that the mixed-integer program of
  :mod:`gpu_alloc_env.baselines.fluid_plan` finds for the next ``horizon_s`` over fluid queues,
  from the state observed and the work the forecast brings (:class:`FluidPlanner`).

It starts from the tuned constant (the Erlang-C one without a record). Ties keep the allocation
held. This is model-predictive control with a perfect forecast and a perfect model.

**Kind: heuristic.** The search is local and greedy over windows, so its score is a return some
policy reaches, not a bound on the best one: the limit lies between it and the relaxation bound
of :mod:`gpu_alloc_env.baselines.bound`.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.baselines.adaptive import mean_request_tokens, replica_rates_rps
from gpu_alloc_env.baselines.fluid_plan import PlanProblem, solve_plan
from gpu_alloc_env.baselines.forecast import episode_draws, unloaded_times
from gpu_alloc_env.baselines.provisioned import ProvisionedErlangPolicy, ProvisionedPolicy
from gpu_alloc_env.baselines.tuned import has_tuned
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.reward import reward
from gpu_alloc_env.core.simulator import BatchSimulator
from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import FixedPolicy, scenario_of

ORACLE_KIND = "heuristic"
"""What the clairvoyant policy's score is: an achievable return (module docstring)."""


class FluidPlanner:
    """Plans replicas over fluid queues from the episode's known work (the MILP's inputs and solve).

    The forecast turns every request into work arriving at its agent: the plan at the task's
    arrival, each specialist call after the plan's unloaded latency, the aggregation after the
    slowest call's. A request counts as its unloaded latency over that of the agent's mean
    request, so long prompts weigh more; a replica completes the mean requests it sustains at
    ``latency_slack`` times a lone request's latency.
    """

    def __init__(
        self,
        config: ScenarioConfig,
        step_s: float = 10.0,
        horizon_s: float = 150.0,
        latency_slack: float = 2.0,
        tail_s: float = 30.0,
        mip_rel_gap: float = 0.01,
        time_limit_s: float = 2.0,
    ) -> None:
        self.config = config
        self.step_s = float(step_s)
        self.steps = max(1, round(horizon_s / step_s))
        self.tail_s = float(tail_s)
        self.mip_rel_gap = float(mip_rel_gap)
        self.time_limit_s = float(time_limit_s)
        engines = config.deployment.engines
        self.engines = engines
        means = mean_request_tokens(config)
        self.rate_per_s = replica_rates_rps(config, latency_slack)
        self.mean_request_s = np.array(
            [
                float(e.lone_request_s(np.array([i]), np.array([o]))[1][0])
                for e, (i, o) in zip(engines, means, strict=True)
            ]
        )
        self.start_steps = np.array(
            [math.ceil(e.cold_start_s / self.step_s) for e in engines], dtype=np.int64
        )
        price = config.reward.cost_weight * config.deployment.price_per_gpu_s
        self.release_usd = np.array([price * e.gpus_per_replica * e.cold_start_s for e in engines])
        self.work = np.zeros((len(config.agents), 1))

    def forecast(self, seed: int) -> None:
        """Read the work of the episode seeded with ``seed`` (module docstring)."""
        config = self.config
        bins = math.ceil(config.episode_length_s / self.step_s) + self.steps + 1
        work = np.zeros((len(config.agents), bins))
        for draws in episode_draws(config, seed):
            if draws.count == 0:
                continue
            times = unloaded_times(config, draws)
            self._add(work, 0, draws.arrival_s, times.plan_s)
            for agent, tasks, call_s in times.calls:
                self._add(work, agent, draws.arrival_s[tasks] + times.plan_s[tasks], call_s)
            called = times.called
            ready_s = draws.arrival_s + times.plan_s + times.slowest_call_s
            self._add(work, 0, ready_s[called], times.aggregate_s[called])
        self.work = work

    def _add(
        self, work: NDArray[np.float64], agent: int, at_s: NDArray[np.float64], latency_s: NDArray[np.float64]
    ) -> None:
        bins = np.minimum((at_s / self.step_s).astype(np.int64), work.shape[1] - 1)
        np.add.at(work[agent], bins, latency_s / self.mean_request_s[agent])

    def plan(
        self, obs: DecodedObservation, gpus: NDArray[np.float64], max_replicas: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """[N, K] replicas per agent and planning step from now, for the first observation of ``obs``."""
        now_s = float(obs.time_s[0])
        first = int(now_s / self.step_s + 1e-6)
        arrivals = self.work[:, first : first + self.steps]
        if arrivals.shape[1] < self.steps:
            arrivals = np.pad(arrivals, ((0, 0), (0, self.steps - arrivals.shape[1])))
        active = obs.active_replicas[0]
        starting = obs.starting_replicas[0]
        # Replicas starting now are taken to be half-way through their cold start.
        half = np.maximum(self.start_steps // 2, 1)
        ready_now = np.where(
            np.arange(self.steps)[None, :] >= half[:, None], (active + starting)[:, None], active[:, None]
        )
        config = self.config
        problem = PlanProblem(
            step_s=self.step_s,
            arrivals=arrivals,
            backlog=obs.queued[0] + obs.running[0],
            ready_now=ready_now,
            rate_per_s=self.rate_per_s,
            start_steps=self.start_steps,
            gpus=gpus,
            max_replicas=max_replicas,
            capacity_gpus=float(config.capacity_gpus),
            price_per_gpu_s=config.reward.cost_weight * config.deployment.price_per_gpu_s,
            delay_usd_per_unit_s=config.reward.delay_usd_per_task_s,
            terminal_usd_per_unit=config.reward.delay_usd_per_task_s * self.tail_s,
            held=active + starting,
            release_usd=self.release_usd,
        )
        return solve_plan(problem, self.time_limit_s, self.mip_rel_gap).replicas


class ClairvoyantPolicy(FixedPolicy):
    """Clairvoyant search over allocations in a twin of the episode (module docstring).

    Args:
        config: the scenario, or the environment that has it.
        window_s: how long a chosen allocation is held before the next search.
        lookahead_s: how long after the window each candidate is simulated, held.
        use_plan: whether the fluid plan is among the candidates.
        tuned_dir: a directory of tuned records searched before the package's own (for the
            constant it starts from).
        planner_options: options of :class:`FluidPlanner`.

    Attributes:
        constant: the allocation each episode starts from (the tuned constant, or the Erlang-C one
            when ``constant_is_tuned`` is False).
        searches: searches run so far; ``plans_failed``: those whose plan the solver did not find
            in its time limit (the other candidates were tried).
    """

    name = "oracle"
    kind = ORACLE_KIND

    def __init__(
        self,
        config: ScenarioConfig | object,
        window_s: float = 30.0,
        lookahead_s: float = 90.0,
        use_plan: bool = True,
        tuned_dir: Path | None = None,
        **planner_options: Any,
    ) -> None:
        super().__init__(config)
        config = self.config
        interval_s = config.decision_interval_s
        for label, value in (("window_s", window_s), ("lookahead_s", lookahead_s)):
            if not value >= interval_s or not math.isfinite(value):
                raise ValueError(
                    f"{label} must be at least the decision interval ({interval_s:g} s), got {value!r}"
                )
        self.window_steps = max(1, round(window_s / interval_s))
        self.lookahead_steps = max(0, round(lookahead_s / interval_s))
        self.planner = FluidPlanner(config, **planner_options) if use_plan else None
        start = (
            ProvisionedPolicy(config) if has_tuned(config, "provisioned") else ProvisionedErlangPolicy(config)
        )
        self.constant = start.replicas.copy()
        self.constant_is_tuned = type(start) is ProvisionedPolicy
        self.twin: BatchSimulator | None = None
        self.current = self.constant.copy()
        self._next_search_step = 0
        self.searches = 0
        self.plans_failed = 0

    def start_episode(self, env: Any, seed: int) -> None:
        """Start the twin of the episode of ``env``'s scenario seeded with ``seed``."""
        from gpu_alloc_env.env import GpuAllocEnv

        scenario = scenario_of(env)
        if scenario != self.config:
            raise ValueError(
                f"the clairvoyant policy was built for scenario {self.config.name!r}; the environment runs "
                f"{scenario.name!r} with other settings"
            )
        twin_env = GpuAllocEnv(scenario)
        twin_env.reset(seed=seed)
        self.twin = twin_env.sim
        if self.planner is not None:
            self.planner.forecast(seed)
        self.current = self.constant.copy()
        self._next_search_step = 0

    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """The allocation chosen by the latest search; a new search every ``window_s``."""
        if obs.active_replicas.shape[0] != 1:
            raise ValueError("the clairvoyant policy acts in one environment at a time (a batch of 1)")
        if self.twin is None:
            raise RuntimeError(
                "the clairvoyant policy needs the episode's seed: call start_episode(env, seed) before the "
                "episode (the evaluation harness does)"
            )
        twin = self.twin
        if abs(float(twin.time_s[0]) - float(obs.time_s[0])) > 0.5 * self.config.decision_interval_s:
            raise RuntimeError(
                f"the clairvoyant policy's twin is at {float(twin.time_s[0]):g} s but the episode at "
                f"{float(obs.time_s[0]):g} s: call start_episode(env, seed) with the episode's seed, and "
                "apply every action the policy returns"
            )
        view = twin.view(copy=False)
        if not np.allclose(view.active[0], obs.active_replicas[0], atol=0.01) or not np.allclose(
            view.starting[0], obs.starting_replicas[0], atol=0.01
        ):
            raise RuntimeError(
                f"the clairvoyant policy's twin holds replicas {view.active[0].tolist()} serving and "
                f"{view.starting[0].tolist()} starting, the episode {obs.active_replicas[0].tolist()} and "
                f"{obs.starting_replicas[0].tolist()}: call start_episode(env, seed) with the episode's "
                "seed, and apply every action the policy returns"
            )
        step = int(twin.step_count[0])
        if step >= self._next_search_step:
            self.current = self._search(obs)
            self._next_search_step = step + self.window_steps
        action: NDArray[np.float64] = self.current.copy()[None, :]
        twin.step(action)
        return action

    def candidates(self, obs: DecodedObservation) -> list[NDArray[np.float64]]:
        """The allocations tried at a search, the one held first (module docstring)."""
        options = [self.current, self.constant]
        for n in range(self.current.size):
            for change in (1.0, -1.0):
                moved = self.current.copy()
                moved[n] += change
                options.append(moved)
        if self.planner is not None:
            try:
                plan = self.planner.plan(obs, self.gpus_per_replica.astype(np.float64), self.max_replicas)
            except RuntimeError:  # no plan within the time limit: the other candidates remain
                self.plans_failed += 1
            else:
                options.append(plan[:, 0])
        fits = []
        seen: set[tuple[float, ...]] = set()
        for option in options:
            key = tuple(option.tolist())
            gpus = float(option @ self.gpus_per_replica)
            if (
                key in seen
                or np.any(option < 0)
                or np.any(option > self.max_replicas)
                or gpus > self.capacity_gpus
            ):
                continue
            seen.add(key)
            fits.append(option)
        return fits

    def _search(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """The candidate whose window and lookahead, simulated in copies of the twin, return the most."""
        assert self.twin is not None
        twin = self.twin
        config = twin.config
        shared = {id(x): x for x in (twin.replay, config, config.workload, twin.params)}
        best, best_return = self.current, -math.inf
        for option in self.candidates(obs):
            trial = copy.deepcopy(twin, memo=dict(shared))
            total = 0.0
            for _ in range(self.window_steps + self.lookahead_steps):
                if bool(trial.done[0]):
                    break
                total += float(reward(self.config, trial.step(option[None, :]))[0])
            if total > best_return + 1e-9:
                best, best_return = option, total
        self.searches += 1
        chosen: NDArray[np.float64] = best.copy()
        return chosen
