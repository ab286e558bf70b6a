"""Rendering of one environment: a text table (``ansi``) and a picture (``rgb_array``).

The picture has a title line (simulated time, GPUs held of the capacity, tasks in flight), a
legend, one group of bars per agent with the agent's name under it (its index when the names do not
fit; left: GPUs of serving replicas in green, starting ones in orange, draining ones in purple,
kept-alive ones in grey, against the capacity, with a dark tick at ``max_replicas`` replicas;
right: the queue in blue, squashed so that 10 requests fill half the height), and a strip of recent
allocations below them, one row per agent in the bars' order, darker for more GPUs. It is drawn with
NumPy alone (text in the 5x7 font of :mod:`gpu_alloc_env._font`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env._font import GLYPH_HEIGHT_PX, draw_text, text_width_px
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.simulator import BatchSimulator

WARM_RGB = (46, 160, 67)
LOADING_RGB = (240, 150, 40)
DRAINING_RGB = (150, 90, 190)
KEPT_ALIVE_RGB = (150, 150, 150)
QUEUE_RGB = (50, 110, 220)
BACKGROUND_RGB = (250, 250, 250)
FRAME_RGB = (60, 60, 60)

TEXT_RGB = (30, 30, 30)

IMAGE_HEIGHT = 300
IMAGE_WIDTH = 480
HISTORY_ROWS_PX = 12
BARS_TOP_PX = 30
"""Rows above this hold the title and the legend."""
LEGEND: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("serving", WARM_RGB),
    ("starting", LOADING_RGB),
    ("draining", DRAINING_RGB),
    ("kept alive", KEPT_ALIVE_RGB),
    ("queue", QUEUE_RGB),
    ("max replicas", FRAME_RGB),
)
"""The legend of the bars: label and colour."""


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
    title = (
        f"t = {sim.time_s[env]:.0f} s   held {int(view.held_gpus[env])} of {cap} GPUs   "
        f"tasks in flight {int(sim.tasks_in_flight[env])}"
    )
    draw_text(image, title, 4, 4, TEXT_RGB)
    x = 4
    for label, rgb in LEGEND:
        _fill(image, 16, 16 + GLYPH_HEIGHT_PX, x, x + GLYPH_HEIGHT_PX, rgb)
        x += GLYPH_HEIGHT_PX + 3
        x += draw_text(image, label, 16, x, TEXT_RGB) + 10
    strip_px = min(HISTORY_ROWS_PX * n, IMAGE_HEIGHT // 3)
    names_top = IMAGE_HEIGHT - strip_px - 6 - GLYPH_HEIGHT_PX - 4
    bars_bottom = names_top - 3
    bars_top = BARS_TOP_PX
    height = bars_bottom - bars_top
    group = max((IMAGE_WIDTH - 8) // n, 2)
    bar = max(group // 3, 1)
    names = [a.name for a in config.agents]
    if any(text_width_px(name) > group - 2 for name in names):
        names = [str(i) for i in range(n)]  # a cut name cannot be told from another: number them
    for i in range(n):
        left = 4 + i * group
        draw_text(image, names[i], names_top, left, TEXT_RGB, max_width_px=group - 2)
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
