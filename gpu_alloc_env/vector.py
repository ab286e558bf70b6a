"""A native Gymnasium vector environment: B environments of one scenario stepped as one batch.

``gym.make_vec("GpuAlloc-v1", num_envs=B)`` (``vectorization_mode="vector_entry_point"``, the
default for every registered id) builds a :class:`GpuAllocVectorEnv`: one
:class:`~gpu_alloc_env.core.simulator.BatchSimulator` of B environments, one compiled kernel call
per step, no B Python environments. Environment ``k`` replays :class:`gpu_alloc_env.GpuAllocEnv`
exactly: reset with the same seed and given the same replicas, it returns the same observations,
rewards and truncations, and an automatic reset continues the environment's own generator as a
single environment's ``reset()`` without a seed does.

Autoreset (``metadata["autoreset_mode"]``, chosen with ``autoreset_mode``), as Gymnasium's own
vector environments do:

* ``NEXT_STEP`` (default, as ``SyncVectorEnv`` and ``CartPoleVectorEnv``): the step after an
  episode ends resets that environment, ignoring its action, and returns its first observation
  with reward 0 and no truncation;
* ``SAME_STEP``: the environment is reset in the step its episode ends; the last observation is in
  ``info["final_obs"]`` and the last step's info in ``info["final_info"]`` (masks ``_final_obs``,
  ``_final_info``);
* ``DISABLED``: finished environments stay finished until ``reset(options={"reset_mask": mask})``.

Info is what :class:`gpu_alloc_env.GpuAllocEnv` gives, in Gymnasium's vector layout (what
``SyncVectorEnv`` over ``gym.make`` builds, at the cost of array operations): every key an array over
the environments (a dict of them for a dict) with a ``_key`` mask of the environments that have it:
``reward_components``, ``metrics``, ``replicas``, ``requested_replicas``, ``repairs`` and
``action_repair_replicas`` every step; ``episode_metrics`` when an episode ends; ``time_s`` for the
environments just reset. ``RecordEpisodeStatistics`` works on top.

``max_episode_steps`` (as ``gym.make`` takes it) truncates each episode after that many steps, as
Gymnasium's ``TimeLimit`` would, if that comes before the scenario's ``episode_length_s``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.metrics import episode_metrics, step_metrics
from gpu_alloc_env.core.reward import REWARD_COMPONENTS, reward_components
from gpu_alloc_env.core.simulator import REPAIR_KINDS, StepStats
from gpu_alloc_env.env import replica_space, resolve_scenario, validate_replicas
from gpu_alloc_env.observation import ObservationLayout
from gpu_alloc_env.render import render_ansi
from gpu_alloc_env.trace_replay import simulator_for

ObsArray = NDArray[np.float32]


class GpuAllocVectorEnv(VectorEnv[ObsArray, NDArray[np.floating], NDArray[Any]]):
    """``num_envs`` environments of a scenario in one batched simulator (module docstring).

    Args:
        num_envs: number of environments B.
        scenario: a preset name (``gpu_alloc_env.SCENARIOS``) or a config.
        autoreset_mode: ``NEXT_STEP`` (default), ``SAME_STEP`` or ``DISABLED`` (an
            :class:`gymnasium.vector.AutoresetMode` or its value).
        render_mode: None or ``"ansi"`` (a text table per environment).
        max_episode_steps: truncate episodes after this many steps (None: the scenario's length).
        **overrides: ``ScenarioConfig`` fields, as for :class:`gpu_alloc_env.GpuAllocEnv`.

    The action is (B, N) desired replicas, each row as the single environment's action; the
    observation (B, 13 N + 5), each row the single environment's observation.
    """

    metadata: dict[str, Any] = {  # noqa: RUF012
        "render_modes": ["ansi"],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | ScenarioConfig = "paper",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        **overrides: Any,
    ) -> None:
        steps = max_episode_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"max_episode_steps must be a positive int or None, got {max_episode_steps!r}")
        self.max_episode_steps = max_episode_steps
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError(
                f"autoreset_mode={autoreset_mode!r} is not one of {[m.value for m in AutoresetMode]}"
            ) from None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported by the vector environment; use None or "
                "'ansi' (pictures: render a single GpuAllocEnv)"
            )
        self.config = resolve_scenario(scenario, overrides)
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.sim = simulator_for(self.config, batch_size=self.num_envs)
        self.layout = ObservationLayout(self.config)
        low, high = self.layout.bounds()
        self.single_observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self.single_action_space = replica_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._needs_reset = np.ones(self.num_envs, dtype=bool)
        """Environments whose episode ended: reset at the next step (NEXT_STEP), or waiting (DISABLED)."""
        self._started = False

    # ------------------------------------------------------------------ reset
    def _reset_env(self, env: int, seed: int | None) -> None:
        if seed is not None or self._rngs[env] is None:
            self._rngs[env] = np.random.default_rng(seed)
        self.sim.reset_env(env, self._rngs[env])  # type: ignore[arg-type]
        self._needs_reset[env] = False

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsArray, dict[str, Any]]:
        """Reset every environment (or those of ``options["reset_mask"]``).

        ``seed``: an int seeds environment ``k`` with ``seed + k`` (as Gymnasium's vector
        environments do); a list gives one seed (or None) per environment; None continues each
        environment's generator (fresh entropy the first time).
        """
        seeds = self._seeds(seed)
        if seed is not None:
            self._np_random_seed = int(seed) if isinstance(seed, int | np.integer) else tuple(seeds)  # type: ignore[assignment]
        mask = np.ones(self.num_envs, dtype=bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), got "
                    f"an array of dtype {mask.dtype} and shape {mask.shape}"
                )
            if not self._started and not mask.all():
                raise RuntimeError("the first reset must reset every environment: pass no reset_mask")
        for env in np.flatnonzero(mask):
            self._reset_env(int(env), seeds[env])
        self._started = True
        obs = self.layout.encode(self.sim.view(copy=False))
        return obs, self._reset_info(mask)

    def _seeds(self, seed: int | list[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            return [int(seed) + k for k in range(self.num_envs)]
        seeds = list(seed)  # type: ignore[arg-type]
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} environments; give one each")
        return seeds

    def _reset_info(self, mask: NDArray[np.bool_]) -> dict[str, Any]:
        """The single environment's reset info (``time_s`` 0) for the environments of ``mask``."""
        return {"time_s": np.zeros(self.num_envs), "_time_s": mask.copy()}

    # ------------------------------------------------------------------ step
    def step(
        self, actions: NDArray[np.floating]
    ) -> tuple[ObsArray, NDArray[Any], NDArray[Any], NDArray[Any], dict[str, Any]]:
        """Apply (B, N) desired replicas for one decision interval in every environment."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        mode = self.metadata["autoreset_mode"]
        resetting = self._needs_reset.copy()
        if resetting.any() and mode == AutoresetMode.DISABLED:
            raise RuntimeError(
                f"environments {np.flatnonzero(resetting).tolist()[:20]} finished their episodes; with "
                "autoreset_mode DISABLED, reset them with reset(options={'reset_mask': mask}) first"
            )
        live = ~resetting
        # NEXT_STEP ignores the action of an environment that only resets, as SyncVectorEnv does.
        desired = validate_replicas(actions, self.config, self.num_envs, rows=live)
        for env in np.flatnonzero(resetting):
            self._reset_env(int(env), None)
        stats = self.sim.step(np.where(live[:, None], desired, 0.0), active=None if live.all() else live)
        components = reward_components(self.config, stats)
        rewards = components[REWARD_COMPONENTS[0]].copy()
        for name in REWARD_COMPONENTS[1:]:
            rewards += components[name]
        rewards[resetting] = 0.0  # NEXT_STEP: an environment only reset this step earns nothing
        truncated = self.sim.done.copy()
        if self.max_episode_steps is not None:
            truncated |= self.sim.step_count >= self.max_episode_steps
        truncated &= live
        terminated = np.zeros(self.num_envs, dtype=bool)
        obs = self.layout.encode(self.sim.view(copy=False))
        if mode == AutoresetMode.SAME_STEP and truncated.any():
            final = self._step_info(stats, components, desired, truncated)
            self._add_episode_metrics(final, truncated)
            info = self._step_info(stats, components, desired, live & ~truncated)
            final_obs = np.full(self.num_envs, None, dtype=object)
            for env in np.flatnonzero(truncated):
                final_obs[env] = obs[env].copy()
                self._reset_env(int(env), None)
            obs = self.layout.encode(self.sim.view(copy=False))
            info.update(self._reset_info(truncated))
            info.update(
                {"final_obs": final_obs, "_final_obs": truncated.copy(), "final_info": final,
                 "_final_info": truncated.copy()}
            )  # fmt: skip
            return obs, rewards, terminated, truncated, info
        info = self._step_info(stats, components, desired, live)
        if resetting.any():
            info.update(self._reset_info(resetting))
        if truncated.any():
            self._add_episode_metrics(info, truncated)
            self._needs_reset |= truncated
        return obs, rewards, terminated, truncated, info

    def _step_info(
        self,
        stats: StepStats,
        components: dict[str, NDArray[np.float64]],
        desired: NDArray[np.float64],
        rows: NDArray[np.bool_],
    ) -> dict[str, Any]:
        """The single environment's step info of the environments of ``rows``, as vector info."""
        sim = self.sim

        def only(array: NDArray[Any]) -> NDArray[Any]:
            kept = np.zeros_like(array)
            kept[rows] = array[rows]
            return kept

        def group(values: dict[str, NDArray[Any]]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, value in values.items():
                out[key] = only(value)
                out[f"_{key}"] = rows.copy()
            return out

        metrics = step_metrics(sim, stats)
        return {
            "reward_components": group(components),
            "_reward_components": rows.copy(),
            "metrics": group(metrics),
            "_metrics": rows.copy(),
            "replicas": only(stats.replicas),
            "_replicas": rows.copy(),
            "requested_replicas": only(desired),
            "_requested_replicas": rows.copy(),
            "repairs": group({kind: stats.repairs[kind] for kind in REPAIR_KINDS}),
            "_repairs": rows.copy(),
            "action_repair_replicas": only(stats.repair_replicas),
            "_action_repair_replicas": rows.copy(),
        }

    def _add_episode_metrics(self, info: dict[str, Any], ended: NDArray[np.bool_]) -> None:
        """``episode_metrics`` of each environment of ``ended``, in the vector layout."""
        for env in np.flatnonzero(ended):
            self._add_info(info, {"episode_metrics": episode_metrics(self.sim, int(env))}, int(env))

    # ------------------------------------------------------------------ other
    def render(self) -> tuple[str, ...] | None:
        """One text table per environment (``render_mode="ansi"``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' to gym.make_vec")
            return None
        if not self._started:
            raise RuntimeError("call reset() before render()")
        return tuple(render_ansi(self.sim, env) for env in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release: one process, no sub-environments."""
