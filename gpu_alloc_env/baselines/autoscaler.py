"""A reactive autoscaler in the manner of Knative's KPA, the default autoscaler of serverless Knative.

Per agent, every decision, as ``pkg/autoscaler/scaling/autoscaler.go`` of knative/serving does:

1. sample the agent's concurrency, the requests in its system (queued and in its batches);
2. average the samples over the stable window (60 s) and the panic window (10% of it, 6 s);
3. desired replicas: ``ceil(average / target)``, with ``target`` the target concurrency per replica
   times the target utilisation (Knative: 100 x 70%);
4. panic when the panic-window desire reaches ``panic_threshold`` (200%) of the ready replicas;
   while panicking (until a stable window passes without that) the larger of the two desires is
   used and the replicas never go down;
5. limits per decision: up to ``max_scale_up_rate`` (1000x) and down to ``1 / max_scale_down_rate``
   (half) of the ready replicas;
6. scale to zero only after the stable window held no traffic and the grace period (30 s) passed;
   a new revision starts with one replica (``initial-scale`` 1).

Defaults and sources: ``../shared/PARAMETERS.md`` (Knative KPA defaults, grade V:
knative.dev/docs/serving/autoscaling, config-autoscaler). The pool's capacity is the platform's
quota: when the agents ask for more GPUs than it holds, the simulator cuts in priority order.
``gpu-alloc tune --baseline autoscaler`` tunes the target concurrency of each agent on the
tuning seeds; the other settings keep Knative's defaults.

The policy keeps its windows between calls, one row per environment of the batch, and starts a
row afresh when that environment's clock goes back (a new episode).

Two departures from Knative, both small at a 1 s decision interval: the concurrency is sampled at
the end of each interval, where Knative's queue-proxy averages it over each second; and the
replica is kept for the whole grace period, where Knative's 30 s is an upper limit it cuts short
once the activator is back in the request path (to zero about 60 to 90 s after the last request).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.baselines.tuned import load_tuned
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import FixedPolicy

KNATIVE_TARGET_CONCURRENCY = 100.0
"""``container-concurrency-target-default``: requests in flight per replica that the KPA aims for."""
KNATIVE_TARGET_UTILIZATION = 0.7
"""``container-concurrency-target-percentage``: the share of the target actually aimed for."""


class AutoscalerPolicy(FixedPolicy):
    """Knative-KPA-style reactive autoscaling of every agent (module docstring).

    Args:
        config: the scenario, or the environment that has it.
        target_concurrency: requests in flight per replica, per agent (N,) or one for all;
            ``"tuned"`` reads the scenario's tuned record; ``None`` is Knative's default (100).
        target_utilization: share of the target aimed for.
        stable_window_s: the window of the stable average.
        panic_window_fraction: the panic window as a fraction of the stable one.
        panic_threshold: panic when the panic desire reaches this multiple of the ready replicas.
        max_scale_up_rate: the most replicas per decision, as a multiple of the ready ones.
        max_scale_down_rate: the fewest replicas per decision, as a divisor of the ready ones.
        scale_to_zero_grace_s: how long the last replica stays after the stable window saw no traffic.
        tuned_dir: a directory of tuned records searched before the package's own.
    """

    name = "autoscaler"

    def __init__(
        self,
        config: ScenarioConfig | object,
        target_concurrency: float | list[float] | NDArray[np.floating] | str | None = "tuned",
        target_utilization: float = KNATIVE_TARGET_UTILIZATION,
        stable_window_s: float = 60.0,
        panic_window_fraction: float = 0.1,
        panic_threshold: float = 2.0,
        max_scale_up_rate: float = 1000.0,
        max_scale_down_rate: float = 2.0,
        scale_to_zero_grace_s: float = 30.0,
        tuned_dir: Path | None = None,
    ) -> None:
        super().__init__(config)
        n = len(self.config.agents)
        if isinstance(target_concurrency, str):
            if target_concurrency != "tuned":
                raise ValueError(
                    f"target_concurrency is a number, N numbers, 'tuned' or None; got {target_concurrency!r}"
                )
            record = load_tuned(self.config, self.name, tuned_dir)
            target_concurrency = record.settings["target_concurrency"]
            if len(target_concurrency) != n:
                raise ValueError(
                    f"the tuned autoscaler record of scenario {self.config.name!r} has "
                    f"{len(target_concurrency)} targets for {n} agents; tune it again (gpu-alloc tune)"
                )
            self.source = f"tuned on {record.tuned_on}, seeds {record.seeds[0]}..{record.seeds[-1]}"
        elif target_concurrency is None:
            target_concurrency = KNATIVE_TARGET_CONCURRENCY
            self.source = "Knative defaults"
        else:
            self.source = "given"
        targets = np.asarray(target_concurrency, dtype=np.float64)
        if targets.ndim > 1 or targets.size not in (1, n):
            raise ValueError(
                f"target_concurrency needs one value or one per agent ({n}), got {targets.tolist()}"
            )
        targets = np.broadcast_to(targets, (n,)).copy()
        if targets.ndim != 1 or not np.all(np.isfinite(targets)) or not np.all(targets > 0.0):
            raise ValueError(f"target_concurrency must be positive and finite, got {targets.tolist()}")
        positive = {
            "target_utilization": target_utilization,
            "stable_window_s": stable_window_s,
            "panic_window_fraction": panic_window_fraction,
            "panic_threshold": panic_threshold,
        }
        at_least_one = {"max_scale_up_rate": max_scale_up_rate, "max_scale_down_rate": max_scale_down_rate}
        for label, value in positive.items():
            if not (np.isfinite(value) and value > 0.0):
                raise ValueError(f"{label} must be a finite number > 0, got {value!r}")
        for label, value in at_least_one.items():
            if not (np.isfinite(value) and value >= 1.0):
                raise ValueError(f"{label} must be a finite number >= 1, got {value!r}")
        if not (np.isfinite(scale_to_zero_grace_s) and scale_to_zero_grace_s >= 0.0):
            raise ValueError(
                f"scale_to_zero_grace_s must be a finite number >= 0, got {scale_to_zero_grace_s!r}"
            )
        self.target_concurrency = targets
        self.target_per_replica = targets * float(target_utilization)
        interval_s = self.config.decision_interval_s
        self.stable_samples = max(1, round(stable_window_s / interval_s))
        self.panic_samples = max(1, round(stable_window_s * panic_window_fraction / interval_s))
        self.stable_window_s = float(stable_window_s)
        self.panic_threshold = float(panic_threshold)
        self.max_scale_up_rate = float(max_scale_up_rate)
        self.max_scale_down_rate = float(max_scale_down_rate)
        self.scale_to_zero_grace_s = float(scale_to_zero_grace_s)
        self._batch = 0

    def _start(self, batch: int) -> None:
        """Windows for a batch of ``batch`` environments."""
        n = len(self.config.agents)
        self._batch = batch
        self._samples = np.zeros((batch, self.stable_samples, n))
        self._count = np.zeros(batch, dtype=np.int64)
        self._clock_s = np.full(batch, np.inf)
        self._panic_since_s = np.full((batch, n), np.nan)
        self._panic_floor = np.zeros((batch, n))
        self._last_traffic_s = np.zeros((batch, n))

    def _restart(self, rows: NDArray[np.bool_]) -> None:
        """Forget the windows of the environments in ``rows`` (new episodes)."""
        self._samples[rows] = 0.0
        self._count[rows] = 0
        self._panic_since_s[rows] = np.nan
        self._panic_floor[rows] = 0.0
        self._last_traffic_s[rows] = 0.0

    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """One KPA decision per agent and environment."""
        batch = obs.active_replicas.shape[0]
        if batch != self._batch:
            self._start(batch)
        now_s = obs.time_s
        self._restart(now_s <= self._clock_s)
        self._clock_s = now_s.copy()
        concurrency = obs.queued + obs.running
        slot = self._count % self.stable_samples
        self._samples[np.arange(batch), slot] = concurrency
        self._count += 1
        filled = np.minimum(self._count, self.stable_samples)
        stable = self._samples.sum(axis=1) / filled[:, None]
        recent = (slot[:, None] - np.arange(self.panic_samples)[None, :]) % self.stable_samples
        panic_filled = np.minimum(self._count, self.panic_samples)
        panic = np.take_along_axis(self._samples, recent[:, :, None], axis=1).sum(axis=1)
        panic = panic / panic_filled[:, None]

        ready = obs.active_replicas
        want_stable = np.ceil(stable / self.target_per_replica - 1e-9)
        want_panic = np.ceil(panic / self.target_per_replica - 1e-9)
        most = np.ceil(self.max_scale_up_rate * np.maximum(ready, 1.0))
        least = np.floor(ready / self.max_scale_down_rate)
        over = want_panic / np.maximum(ready, 1.0) >= self.panic_threshold
        want_stable = np.clip(want_stable, least, most)
        want_panic = np.clip(want_panic, least, most)

        now = np.broadcast_to(now_s[:, None], over.shape)
        self._panic_since_s = np.where(over, now, self._panic_since_s)
        calm = now - self._panic_since_s > self.stable_window_s
        self._panic_since_s = np.where(calm, np.nan, self._panic_since_s)
        panicking = ~np.isnan(self._panic_since_s)
        wanted = np.maximum(want_panic, want_stable)
        self._panic_floor = np.where(panicking, np.maximum(self._panic_floor, wanted), 0.0)
        desired = np.where(panicking, self._panic_floor, want_stable)

        self._last_traffic_s = np.where(concurrency > 0.0, now, self._last_traffic_s)
        idle_s = now - self._last_traffic_s
        keep_one = idle_s < self.stable_window_s + self.scale_to_zero_grace_s
        desired = np.where(keep_one, np.maximum(desired, 1.0), desired)
        return np.minimum(desired, self.max_replicas)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(scenario={self.config.name!r}, "
            f"target_concurrency={self.target_concurrency.tolist()})"
        )
