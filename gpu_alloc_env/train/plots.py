"""The evaluation's figures, as PNG files drawn with matplotlib's Agg backend.

Task-latency CDFs, cost per task against p95 latency, one episode's allocation timeline per policy,
and the runs' learning curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gpu_alloc_env.config import ScenarioConfig

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from gpu_alloc_env.train.comparison import Scored
    from gpu_alloc_env.train.learned import LearnedPolicy

PLOT_FILES = ("latency_cdf.png", "cost_vs_p95.png", "allocation_timeline.png", "learning_curves.png")
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P")
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def write_plots(
    scored: Sequence[Scored], runs: Sequence[LearnedPolicy], config: ScenarioConfig, out_dir: Path
) -> list[Path]:
    """Write :data:`PLOT_FILES` into ``out_dir`` (the learning curves only when there are runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    policies = list(dict.fromkeys(i.result.policy for i in scored))
    written = []

    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for k, policy in enumerate(policies):
        latencies = [i.result.task_latencies_s for i in scored if i.result.policy == policy]
        pooled = np.sort(np.concatenate([x for x in latencies if x is not None]))
        if pooled.size:
            # Policies with nearly the same latencies draw nearly the same curve: each gets its own
            # line style and markers at its own quantiles, drawn thinner the later it comes, so no
            # curve hides another.
            fraction = np.arange(1, pooled.size + 1) / pooled.size
            marks = np.searchsorted(fraction, np.linspace(0.05 + 0.03 * k, 0.95, 8))
            ax.plot(
                pooled,
                fraction,
                label=policy,
                linestyle=LINE_STYLES[k % len(LINE_STYLES)],
                marker=MARKERS[k % len(MARKERS)],
                markevery=list(np.unique(np.clip(marks, 0, pooled.size - 1))),
                markersize=5,
                linewidth=max(2.4 - 0.5 * k, 0.9),
            )
            drawn = drawn or bool(np.any(pooled > 0.0))
    _log_x_or_say(ax, drawn, "no task latency to show")
    ax.set_xlabel("task latency (s)")
    ax.set_ylabel("fraction of tasks")
    ax.set_title(f"Task latency CDF, scenario {config.name}")
    ax.grid(True, alpha=0.3)
    written.append(_save(fig, out_dir / "latency_cdf.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for policy in policies:
        mine = [i.result for i in scored if i.result.policy == policy]
        pairs = np.array(
            [(r.value("task_latency_p95_s"), r.value("cost_per_1k_tasks_usd")) for r in mine], dtype=float
        ).reshape(-1, 2)
        # An episode in which no task completed has no cost per task: it has no point.
        pairs = pairs[np.all(np.isfinite(pairs), axis=1) & (pairs[:, 0] > 0.0)]
        if not pairs.size:
            continue
        p95, cost = pairs[:, 0], pairs[:, 1]
        # Policies with the same episodes land on the same points: each has its own shape, hollow,
        # and each later policy is drawn smaller, on top, so every one stays visible.
        k = policies.index(policy)
        marker = MARKERS[k % len(MARKERS)]
        colour = COLOURS[k % len(COLOURS)]
        ax.scatter(
            p95,
            cost,
            s=max(40 - 8 * k, 10),
            marker=marker,
            facecolors="none",
            edgecolors=colour,
            label=policy,
        )
        # Means hollow too, with thick edges: coinciding means draw as concentric outlines.
        ax.scatter(
            [np.mean(p95)],
            [np.mean(cost)],
            s=max(260 - 60 * k, 50),
            marker=marker,
            facecolors="none",
            edgecolors=colour,
            linewidths=2.2,
            zorder=3 + k,
        )
        drawn = True
    # Round-robin's latencies are ten times the others': a log axis keeps every policy readable.
    _log_x_or_say(ax, drawn, "no episode completed a task")
    ax.set_xlabel("p95 task latency (s, log scale)")
    ax.set_ylabel("cost per 1000 tasks (USD)")
    ax.set_title("Cost against tail latency (small: episodes; large: mean)")
    ax.grid(True, alpha=0.3)
    written.append(_save(fig, out_dir / "cost_vs_p95.png"))

    fig, axes = plt.subplots(
        len(policies), 1, figsize=(7, 1.8 * len(policies) + 0.6), sharex=True, squeeze=False
    )
    names = [a.name for a in config.agents]
    for ax, policy in zip(axes[:, 0], policies, strict=True):
        first = next(i.result for i in scored if i.result.policy == policy)
        alloc = first.allocation_gpus
        if alloc is None:
            continue
        time_s = np.arange(alloc.shape[0]) * config.decision_interval_s
        ax.stackplot(time_s, alloc.T, labels=names, step="post", colors=agent_colours(len(names)))
        ax.set_ylim(0, config.capacity_gpus)
        ax.set_ylabel(f"{policy}\nGPUs")
    title = f"Allocation over one episode (seed {scored[0].result.seed})"
    if len(names) <= 6:  # between the title and the first panel, where it covers no band
        axes[0, 0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), fontsize=7, ncol=6, frameon=False)
        axes[0, 0].set_title(title, pad=20)
    else:  # beside the panels, in as many columns as it takes
        axes[0, 0].legend(
            loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6, ncol=-(-len(names) // 24), frameon=False
        )
        axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time (s)")
    written.append(_save(fig, out_dir / "allocation_timeline.png"))

    if runs:
        fig, ax = plt.subplots(figsize=(6, 4))
        curves = 0
        for run in runs:
            log = run.run_dir / "evaluations.npz"
            if log.exists():
                with np.load(log) as data:
                    ax.plot(data["timesteps"], data["results"].mean(axis=1), marker=".", label=run.label)
                curves += 1
        if not curves:
            ax.text(
                0.5,
                0.5,
                "no validation ran: the runs are shorter than eval_freq_steps",
                ha="center",
                transform=ax.transAxes,
            )
        reference = heuristic_validation_return(runs[0])
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="adaptive heuristic")
        ax.set_xlabel("training steps")
        ax.set_ylabel("validation return (mean over episodes)")
        ax.set_title("Learning curves")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        written.append(_save(fig, out_dir / "learning_curves.png"))
    return written


def agent_colours(count: int) -> list[tuple[float, float, float, float]]:
    """``count`` distinct colours: tab10 up to 10 agents, tab20 up to 20, a continuous map beyond."""
    from matplotlib import colormaps

    if count <= 10:
        return [colormaps["tab10"](k) for k in range(count)]
    if count <= 20:
        return [colormaps["tab20"](k) for k in range(count)]
    return [colormaps["turbo"](k / max(count - 1, 1)) for k in range(count)]


def heuristic_validation_return(run: LearnedPolicy) -> float:
    """The adaptive heuristic's mean return on the validation episodes a run's curve averages."""
    from gpu_alloc_env.baselines import AdaptivePolicy
    from gpu_alloc_env.evaluation import evaluate_policies
    from gpu_alloc_env.seeds import VALIDATION_SEED_BASE
    from gpu_alloc_env.train.learned import load_run_config

    episodes = int(load_run_config(run.run_dir)["hyperparams"]["eval_episodes"])
    seeds = [VALIDATION_SEED_BASE + k for k in range(episodes)]
    results = evaluate_policies({"adaptive": AdaptivePolicy(run.config)}, run.config, seeds)
    return float(np.mean([r.episode_return for r in results]))


def _log_x_or_say(ax: Axes, drawn: bool, empty_text: str) -> None:
    """A log x axis with readable ticks and a legend when something was drawn, else ``empty_text``.

    A log axis needs a positive value, and an episode may hold no task at all.
    """
    if drawn:
        ax.set_xscale("log")
        _readable_log_ticks(ax)
        ax.legend()
    else:
        ax.text(0.5, 0.5, empty_text, ha="center", transform=ax.transAxes)


def _readable_log_ticks(ax: Axes) -> None:
    """Plain-number labels on a log x axis: at 1, 2, 3, 5 and 7 of a decade, fewer the more decades."""
    from matplotlib import ticker

    axis = ax.xaxis
    low, high = ax.get_xlim()
    decades = np.log10(high / low) if low > 0 else np.inf
    subs = (1.0, 2.0, 3.0, 5.0, 7.0) if decades <= 1.5 else (1.0, 2.0, 5.0) if decades <= 3.0 else (1.0,)
    axis.set_major_locator(ticker.LogLocator(base=10.0, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path


def performance_profile_plot(
    shares: dict[str, list[list[float]]], thresholds: np.ndarray, path: Path, resamples: int = 500
) -> Path:
    """Rliable's performance profile: per policy, the fraction of episodes scoring above each threshold.

    ``shares`` maps a policy to its per-episode scores in each scenario; a scenario's fraction
    counts its episodes, and scenarios are averaged with equal weight. The band is a 95% stratified
    bootstrap interval (episodes resampled within each scenario).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def profile(strata: Sequence[np.ndarray]) -> np.ndarray:
        curve: np.ndarray = np.mean([(s[:, None] > thresholds[None, :]).mean(axis=0) for s in strata], axis=0)
        return curve

    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for k, (policy, strata_lists) in enumerate(shares.items()):
        strata = [np.asarray(s, dtype=np.float64) for s in strata_lists if len(s)]
        if not strata:
            continue
        curve = profile(strata)
        boot = np.array(
            [profile([s[rng.integers(0, s.size, s.size)] for s in strata]) for _ in range(resamples)]
        )
        low, high = np.percentile(boot, [2.5, 97.5], axis=0)
        colour = COLOURS[k % len(COLOURS)] if k < len(COLOURS) else "tab:gray"
        ax.plot(
            thresholds,
            curve,
            color=colour,
            linestyle=LINE_STYLES[k % len(LINE_STYLES)],
            marker=MARKERS[k % len(MARKERS)],
            markevery=10,
            markersize=4,
            label=policy,
        )
        ax.fill_between(thresholds, low, high, color=colour, alpha=0.15, linewidth=0)
    ax.set_xlabel("share of the way from the worst baseline to the relaxation bound (tau)")
    ax.set_ylabel("fraction of episodes scoring above tau")
    ax.set_title("Performance profile over the benchmark scenarios")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)
