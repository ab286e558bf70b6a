"""The registered ids in Ray's environment registry, so that RLlib finds them on every worker.

RLlib's env runners are separate processes that never import :mod:`gpu_alloc_env`, so a Gymnasium
id registered at import is unknown there (``NameNotFound: Environment `GpuAlloc` doesn't exist``),
unless it is also in Ray's registry, which the cluster shares with every worker. Importing
:mod:`gpu_alloc_env` calls :func:`install`: every id of :data:`gpu_alloc_env.ENV_IDS` is registered
with ``ray.tune.registry.register_env`` as soon as that module is imported (at once if it already
is), so that after ``import gpu_alloc_env`` a plain ``PPOConfig().environment("GpuAlloc-v1")``
works with remote env runners. :mod:`gpu_alloc_env` never imports Ray itself: until Ray is
imported, the only cost is one entry on ``sys.meta_path``.

The creator, :func:`make_rllib_env`, is a module-level function that a worker unpickles by
reference, importing this package (and so its Gymnasium ids) there too. It builds the native
vector environment when RLlib asks for ``num_envs`` (``gym_env_vectorize_mode="vector_entry_point"``
in ``AlgorithmConfig.env_runners``) and one ``gym.make`` environment otherwise (RLlib's default
``"sync"`` mode, which steps them one by one).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import gymnasium as gym

RAY_REGISTRY_MODULE = "ray.tune.registry"
"""The module whose import registers the ids (RLlib imports it before it builds an algorithm)."""


def make_rllib_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> gym.Env[Any, Any] | Any:
    """The environment ``env_id`` with ``env_config`` as keyword arguments, for RLlib.

    With ``num_envs`` in ``env_config`` (RLlib's vector entry point), the native
    :class:`~gpu_alloc_env.GpuAllocVectorEnv` of that many environments; without it, one
    ``gym.make`` environment. Other keys are ``gym.make`` keywords (``scenario``, ``overrides``, ...).
    """
    kwargs = dict(env_config or {})
    num_envs = kwargs.pop("num_envs", None)
    if num_envs is None:
        return gym.make(env_id, **kwargs)
    return gym.make_vec(env_id, num_envs=int(num_envs), vectorization_mode="vector_entry_point", **kwargs)


def register_with_ray(env_ids: Sequence[str] | None = None) -> None:
    """Register ``env_ids`` (default: every id of :data:`gpu_alloc_env.ENV_IDS`) with Ray."""
    from ray.tune.registry import register_env

    from gpu_alloc_env import ENV_IDS

    for env_id in env_ids if env_ids is not None else ENV_IDS:
        register_env(env_id, functools.partial(make_rllib_env, env_id))


class _RegisterAfterExec(importlib.abc.Loader):
    """Runs the wrapped loader, then :func:`register_with_ray`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)  # get_code, is_package, ...: the wrapped loader's

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        register_with_ray()


class _RegisterOnRayImport(importlib.abc.MetaPathFinder):
    """Finds ``ray.tune.registry`` as usual, with a loader that registers the ids after it runs."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != RAY_REGISTRY_MODULE:
            return None
        sys.meta_path.remove(self)  # once; and the lookup below must not find this finder again
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterExec(spec.loader)
        return spec


def install() -> None:
    """Register the ids with Ray now if its registry is imported, else as soon as it is."""
    if RAY_REGISTRY_MODULE in sys.modules:
        register_with_ray()
    elif not any(isinstance(finder, _RegisterOnRayImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnRayImport())
