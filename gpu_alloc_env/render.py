"""Rendering of one environment: a text table (``ansi``) and a picture (``rgb_array``).

The picture has one group of bars per agent (left: GPUs of serving replicas in green, starting
ones in orange, draining ones in purple, kept-alive ones in grey, against the capacity, with a dark
tick at ``max_replicas`` replicas; right: the queue in blue, squashed so that 10 requests fill half
the height) above a strip of recent allocations, one row per agent, brighter for more GPUs. It is
drawn with NumPy alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.simulator import BatchSimulator

WARM_RGB = (46, 160, 67)
LOADING_RGB = (240, 150, 40)
DRAINING_RGB = (150, 90, 190)
KEPT_ALIVE_RGB = (150, 150, 150)
QUEUE_RGB = (50, 110, 220)
BACKGROUND_RGB = (250, 250, 250)
FRAME_RGB = (60, 60, 60)

IMAGE_HEIGHT = 240
IMAGE_WIDTH = 400
HISTORY_ROWS_PX = 12


def render_ansi(sim: BatchSimulator, env: int = 0) -> str:
    """A text table of the replicas, queues, batches and KV-cache use of environment ``env``."""
    config = sim.config
    view = sim.view()
    lines = [
        f"t={sim.time_s[env]:8.1f} s  capacity={config.capacity_gpus} GPUs  held={int(view.held_gpus[env])}  "
        f"tasks in flight={int(sim.tasks_in_flight[env])}  completed={int(sim.tasks_completed[env])}",
        f"{'agent':<14}{'serve':>6}{'start':>6}{'drain':>6}{'kept':>6}"
        f"{'queue':>7}{'batch':>7}{'kv %':>6}{'req/s':>7}",
    ]
    for n, agent in enumerate(config.agents):
        total = view.kv_total_blocks[env, n]
        kv = 100.0 * view.kv_used_blocks[env, n] / total if total else 0.0
        lines.append(
            f"{agent.name[:13]:<14}"
            f"{view.active[env, n]:6d}{view.starting[env, n]:6d}"
            f"{view.draining[env, n]:6d}{view.kept_alive[env, n]:6d}"
            f"{view.queued[env, n]:7d}{view.running[env, n]:7d}{kv:6.0f}{view.arrival_rps[env, n]:7.2f}"
        )
    return "\n".join(lines) + "\n"


def _fill(
    image: NDArray[np.uint8], top: int, bottom: int, left: int, right: int, rgb: tuple[int, int, int]
) -> None:
    if bottom > top and right > left:
        image[top:bottom, left:right] = rgb


def render_rgb(
    sim: BatchSimulator,
    history_gpus: Sequence[NDArray[np.float64]],
    env: int = 0,
) -> NDArray[np.uint8]:
    """An (IMAGE_HEIGHT, IMAGE_WIDTH, 3) picture of environment ``env``.

    Args:
        sim: the simulator.
        history_gpus: recent allocations (N,) in GPUs, oldest first.
        env: which environment.
    """
    config: ScenarioConfig = sim.config
    n = sim.num_agents
    cap = config.capacity_gpus
    view = sim.view()
    size = sim.gpus_per_replica
    image = np.empty((IMAGE_HEIGHT, IMAGE_WIDTH, 3), dtype=np.uint8)
    image[:] = BACKGROUND_RGB
    strip_px = min(HISTORY_ROWS_PX * n, IMAGE_HEIGHT // 2)
    bars_bottom = IMAGE_HEIGHT - strip_px - 8
    bars_top = 8
    height = bars_bottom - bars_top
    group = max((IMAGE_WIDTH - 8) // n, 2)
    bar = max(group // 3, 1)
    for i in range(n):
        left = 4 + i * group
        levels = [
            (view.active[env, i] * size[i], WARM_RGB),
            (view.starting[env, i] * size[i], LOADING_RGB),
            (view.draining[env, i] * size[i], DRAINING_RGB),
            (view.kept_alive[env, i] * size[i], KEPT_ALIVE_RGB),
        ]
        base = bars_bottom
        for gpus, rgb in levels:
            px = round(height * min(gpus / cap, 1.0))
            _fill(image, base - px, base, left, left + bar, rgb)
            base -= px
        max_px = round(height * min(config.agents[i].max_gpus / cap, 1.0))
        _fill(image, bars_bottom - max_px, bars_bottom - max_px + 1, left, left + bar, FRAME_RGB)
        queue = float(view.queued[env, i])
        q_px = round(height * queue / (queue + 10.0))
        _fill(image, bars_bottom - q_px, bars_bottom, left + bar + 2, left + 2 * bar + 2, QUEUE_RGB)
        _fill(image, bars_bottom, bars_bottom + 1, left, left + 2 * bar + 2, FRAME_RGB)
    if history_gpus:
        history = np.stack(list(history_gpus), axis=1)[:, -(IMAGE_WIDTH - 8) :]
        max_gpus = np.array([a.max_gpus for a in config.agents], dtype=np.float64)
        shade = np.clip(history / max_gpus[:, None], 0, 1)
        rows_px = max(strip_px // n, 1)
        top = IMAGE_HEIGHT - strip_px
        for i in range(n):
            cols = shade.shape[1]
            colour = (255 - shade[i, :, None] * np.array([209, 95, 188])).astype(np.uint8)
            block = np.broadcast_to(colour[None, :, :], (rows_px - 1, cols, 3))
            image[top + i * rows_px : top + (i + 1) * rows_px - 1, 4 : 4 + cols] = block
    return image
