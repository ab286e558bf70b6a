"""The ``gpu-alloc`` command."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_alloc_env.baselines import BASELINES
from gpu_alloc_env.config import TRACE_FILE_FIELDS, ConfigError, ScenarioConfig, TraceSpec
from gpu_alloc_env.data import TRACES
from gpu_alloc_env.scenarios import SCENARIOS, make_scenario
from gpu_alloc_env.seeds import EVALUATION_SEED_BASE, TUNING_SEED_BASE
from gpu_alloc_env.traces import TIMESTAMP_UNITS

TRACE_OPTIONS = {
    "trace_timestamp_column": "timestamp_column",
    "trace_input_column": "input_tokens_column",
    "trace_output_column": "output_tokens_column",
    "trace_timestamp_unit": "timestamp_unit",
    "trace_tokens_agent": "tokens_agent",
    "trace_split": "split",
}
"""``--trace-*`` option (argparse dest) -> ``TraceSpec`` field."""


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs; VALUE is read as JSON when it parses, else as a string."""
    overrides: dict[str, Any] = {}
    for item in items:
        field, sep, raw = item.partition("=")
        if not sep or not field:
            raise ConfigError(
                f"--set {item!r} is not FIELD=VALUE; for example --set capacity_gpus=16 or "
                "--set 'workload={\"task_rate_tps\": 4}'"
            )
        try:
            overrides[field] = json.loads(raw)
        except json.JSONDecodeError as exc:
            if raw.lstrip()[:1] in ("{", "["):
                raise ConfigError(
                    f"--set {item!r}: the value is not valid JSON ({exc}); quote keys and strings, "
                    "for example --set 'workload={\"task_rate_tps\": 4}'"
                ) from exc
            overrides[field] = raw
    return overrides


def merge_overrides(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, merging nested mappings (``workload``, ``agents``, ``trace``)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def trace_overrides(args: argparse.Namespace, base: ScenarioConfig | None = None) -> dict[str, Any]:
    """Scenario overrides of the ``--trace`` options: replay a file, or change the scenario's trace.

    ``base`` is the scenario the options apply to (with ``--set`` applied), when known: options
    other than ``--trace`` need it to replay a trace already.
    """
    fields = {
        field: getattr(args, dest)
        for dest, field in TRACE_OPTIONS.items()
        if getattr(args, dest, None) is not None
    }
    source = getattr(args, "trace", None)
    if source is None:
        if fields and base is not None and base.workload.trace is None:
            given = [f"--{dest.replace('_', '-')}" for dest in TRACE_OPTIONS if getattr(args, dest, None)]
            raise ConfigError(
                f"{', '.join(given)} change(s) the trace a scenario replays, but scenario {base.name!r} "
                f"replays none; add --trace PATH (a CSV or JSON Lines file of requests, or a bundled trace "
                f"{sorted(TRACES)}) or choose a trace scenario such as trace-conv"
            )
        return {"workload": {"trace": fields}} if fields else {}
    if source not in TRACES:
        path = Path(source).expanduser()
        if not path.is_file():
            problem = "is a directory" if path.is_dir() else "no such file"
            raise ConfigError(
                f"--trace {source}: {problem}; pass a CSV or JSON Lines file of requests, or a "
                f"bundled trace {sorted(TRACES)}"
            )
        source = str(path.resolve())
    old = base.workload.trace if base is not None else None
    if old is not None and old.source != source:
        # Another trace: the old file's columns and unit do not describe it.
        defaults = {f.name: f.default for f in dataclasses.fields(TraceSpec) if f.name in TRACE_FILE_FIELDS}
        fields = {**defaults, **fields}
    return {"workload": {"pattern": "trace", "trace": {"source": source, **fields}}}


def trace_scenario_name(base: ScenarioConfig, replayed: ScenarioConfig) -> str:
    """The name of ``base`` once the ``--trace`` options made it ``replayed``.

    A trace that ``base`` does not replay adds ``-trace-<name>`` (a bundled trace's name, or the
    file's stem), and a part other than ``base``'s adds ``-held-out``, ``-train`` or ``-all``; so
    ``paper`` with ``--trace requests.csv`` is ``paper-trace-requests``, and ``trace-code`` with
    ``--trace-split held_out`` is ``trace-code-held-out``, the name of the preset it then equals.
    """
    old, new = base.workload.trace, replayed.workload.trace
    if new is None:
        return base.name
    name = base.name
    if old is None or old.source != new.source:
        if old is not None:  # a name that says which trace it replays says it no longer
            name = name.removesuffix(f"-trace-{_trace_label(old.source)}")
        name += f"-trace-{_trace_label(new.source)}"
    if new.split != (old.split if old is not None else "train"):
        name += "-" + new.split.replace("_", "-")
    return name


def _trace_label(source: str) -> str:
    """A bundled trace's name, or a file's stem, as it appears in scenario names."""
    label = source if source in TRACES else Path(source).stem
    return re.sub(r"[^A-Za-z0-9_.]+", "_", label) or "file"


def base_scenario(args: argparse.Namespace, scenario: str | None = None) -> ScenarioConfig | None:
    """The scenario a command's options apply to.

    That is ``scenario``, ``--scenario``, the first run's, or ``paper`` for ``evaluate`` without runs.
    """
    name = scenario or getattr(args, "scenario", None)
    if isinstance(name, str):
        return make_scenario(name)
    runs = getattr(args, "runs", None)
    if runs:
        from gpu_alloc_env.train.learned import load_run_config

        return ScenarioConfig.from_dict(load_run_config(runs[0])["scenario"])
    return make_scenario("paper") if getattr(args, "command", None) == "evaluate" else None


def scenario_overrides(args: argparse.Namespace, scenario: str | None = None) -> dict[str, Any]:
    """Every scenario override of a command: ``--set``, then ``--trace*``, then ``--twin``.

    The scenario is renamed after the trace it then replays (:func:`trace_scenario_name`) unless
    ``--set name=...`` names it; a twin appends ``-twin`` to that name.
    """
    overrides = parse_overrides(args.overrides)
    base = base_scenario(args, scenario)
    if base is not None and overrides:
        base = base.replace(**overrides)
    traces = trace_overrides(args, base)
    overrides = merge_overrides(overrides, traces)
    if traces and base is not None and "name" not in overrides:
        name = trace_scenario_name(base, base.replace(**traces))
        if name != base.name:
            overrides["name"] = name
    twin = getattr(args, "twin", None)
    if twin is not None:
        from gpu_alloc_env.twin import twin_overrides

        config = make_scenario(scenario or args.scenario, **overrides)
        overrides = merge_overrides(overrides, twin_overrides(config, twin))
    return overrides


def _add_trace_options(parser: argparse.ArgumentParser, twin: bool = True) -> None:
    group = parser.add_argument_group(
        "trace replay",
        "replay a request trace as the task arrivals (docs/MODEL.md, section 1.9); the options "
        "without --trace change the trace of a trace scenario",
    )
    group.add_argument(
        "--trace",
        metavar="PATH",
        default=None,
        help=f"a CSV or JSON Lines file of requests, or a bundled trace {sorted(TRACES)}",
    )
    group.add_argument("--trace-timestamp-column", metavar="NAME", help="default TIMESTAMP")
    group.add_argument("--trace-input-column", metavar="NAME", help="default ContextTokens")
    group.add_argument("--trace-output-column", metavar="NAME", help="default GeneratedTokens")
    group.add_argument(
        "--trace-timestamp-unit",
        choices=TIMESTAMP_UNITS,
        help="datetime (ISO 8601 text), s or ms; auto (the default) reads datetimes only",
    )
    group.add_argument("--trace-tokens-agent", metavar="AGENT", help="agent whose requests carry the tokens")
    group.add_argument(
        "--trace-split",
        choices=["train", "held_out", "all"],
        help="part of the trace to replay (default train: the first 70%% of its span)",
    )
    if twin:
        group.add_argument(
            "--twin",
            choices=["bursty", "diurnal"],
            default=None,
            help="use the synthetic twin fitted to the part of the trace the scenario replays (the "
            "training part unless --trace-split says otherwise) instead of the trace",
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gpu-alloc``."""
    parser = argparse.ArgumentParser(
        prog="gpu-alloc",
        description="Serverless GPU allocation for LLM multi-agent systems: compare the baselines, "
        "train PPO allocators and evaluate them against the baselines.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    compare = sub.add_parser(
        "compare",
        help="run every baseline on the same seeds; write episodes.csv and summary.md",
        description="Run the baseline policies on the same seeds of a scenario and write "
        "DIR/episodes.csv (one row per policy and seed) and DIR/summary.md (mean and 95% "
        "confidence interval per policy and metric, and the paper's headline ratios).",
    )
    compare.add_argument("--scenario", default="paper", choices=sorted(SCENARIOS))
    compare.add_argument("--episodes", type=int, default=10, help="seeds per policy (default 10)")
    compare.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    compare.add_argument("--out", type=Path, required=True, help="output directory")
    compare.add_argument(
        "--policies",
        nargs="+",
        choices=sorted(BASELINES),
        default=None,
        help="baselines to run (default: all)",
    )
    compare.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a scenario field (JSON value), repeatable",
    )
    _add_trace_options(compare)
    _add_train(sub)
    _add_evaluate(sub)
    _add_experiment(sub)
    _add_twin(sub)
    _add_generalise(sub)
    _add_serving(sub)
    return parser


def _add_serving(sub: Any) -> None:
    from gpu_alloc_env.serving.hardware import GPUS
    from gpu_alloc_env.serving.models import MODELS
    from gpu_alloc_env.serving.platforms import PLATFORMS

    serving = sub.add_parser(
        "serving",
        help="one replica under a closed loop of clients: TTFT, ITL, latency and throughput",
        description="Run the serving model on its own, as users size a deployment: C clients each "
        "send a request of I prompt and O output tokens to one replica (the model on K GPUs, vLLM's "
        "defaults) and the next as soon as the last completes. Prints, per concurrency, the mean time "
        "to first token, inter-token latency, end-to-end latency, output tokens/s and requests/s, "
        "with the replica's KV-cache capacity, max_model_len and cold start.",
    )
    serving.add_argument("--model", required=True, metavar="NAME", help=f"one of {sorted(MODELS)}")
    serving.add_argument("--gpu", required=True, metavar="NAME", help=f"one of {sorted(GPUS)}")
    serving.add_argument("--tensor-parallel", type=int, required=True, metavar="K", help="GPUs per replica")
    serving.add_argument("--dtype", choices=["bf16", "fp8"], required=True, help="weights and KV cache")
    serving.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        required=True,
        metavar="C",
        help="closed-loop clients, one run each",
    )
    serving.add_argument("--input-tokens", type=int, required=True, metavar="I", help="prompt tokens")
    serving.add_argument("--output-tokens", type=int, required=True, metavar="O", help="output tokens")
    serving.add_argument(
        "--platform",
        default="runpod",
        metavar="NAME",
        help=f"sets only the cold start printed: one of {sorted(PLATFORMS)} (default runpod)",
    )
    serving.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {concurrency, ttft_s, itl_s, e2e_latency_s, output_tokens_per_s, "
        "requests_per_s} instead of the table",
    )


def _add_generalise(sub: Any) -> None:
    generalise = sub.add_parser(
        "generalise",
        help="train PPO on synthetic scenarios and on traces; score all on the traces' held-out parts",
        description="Train PPO (reusing finished runs, resuming interrupted ones) on paper, on each "
        "bundled trace's synthetic twin and on each trace's training part; then score every run and "
        "every baseline on the held-out part of each trace and write DIR/summary.md and "
        "DIR/episodes-<trace>.csv.",
    )
    generalise.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds")
    generalise.add_argument("--timesteps", type=int, required=True, help="environment steps per run")
    generalise.add_argument("--runs-dir", type=Path, required=True, help="folder of the run folders")
    generalise.add_argument("--out", type=Path, required=True, help="output directory")
    generalise.add_argument("--episodes", type=int, default=20, help="held-out episodes per policy")
    generalise.add_argument("--parallel", type=int, default=2, help="runs trained at once (default 2)")


def _add_twin(sub: Any) -> None:
    twin = sub.add_parser(
        "twin",
        help="fit synthetic twins to trace scenarios and report their statistics next to the trace's",
        description="Fit the bursty and diurnal twins to the training part of each trace scenario "
        "and print (and with --out, write) a Markdown table of the trace's and the twins' "
        "arrival rate, index of dispersion and token statistics.",
    )
    twin.add_argument(
        "--scenario",
        nargs="+",
        default=["trace-conv", "trace-code"],
        choices=sorted(SCENARIOS),
        help="trace scenarios (default: both bundled traces)",
    )
    twin.add_argument("--episodes", type=int, default=20, help="generated episodes per twin (default 20)")
    twin.add_argument("--out", type=Path, default=None, help="write the report to this Markdown file")
    twin.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE", help="scenario field"
    )
    _add_trace_options(twin, twin=False)


def _add_experiment(sub: Any) -> None:
    experiment = sub.add_parser(
        "experiment",
        help="train PPO over several seeds, then evaluate the runs against the baselines",
        description="Train one PPO run per seed (in parallel subprocesses; finished runs are "
        "reused and interrupted ones resumed), then run gpu-alloc evaluate on all of them.",
    )
    experiment.add_argument("--scenario", default="paper", choices=sorted(SCENARIOS))
    experiment.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="training seeds")
    experiment.add_argument("--timesteps", type=int, required=True, help="environment steps per run")
    experiment.add_argument("--runs-dir", type=Path, required=True, help="folder of the run folders")
    experiment.add_argument("--out", type=Path, required=True, help="evaluation output directory")
    experiment.add_argument("--episodes", type=int, default=20, help="held-out episodes per policy")
    experiment.add_argument("--parallel", type=int, default=2, help="runs trained at once (default 2)")
    experiment.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE", help="hyperparameter")
    experiment.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE", help="scenario field"
    )
    _add_trace_options(experiment)


def _add_train(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="train a PPO allocator (Stable-Baselines3) into a run folder",
        description="Train PPO on a scenario. Hyperparameters come from train/hyperparams.yml "
        "(the scenario's block over 'default'), then --hp. The run folder receives the resolved "
        "config, the arguments, the command, the git revision, the models, checkpoints and logs.",
    )
    train.add_argument("--scenario", default=None, choices=sorted(SCENARIOS), help="default paper")
    train.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    train.add_argument("--timesteps", type=int, default=None, help="total environment steps")
    train.add_argument("--run-dir", type=Path, required=True, help="the run folder")
    train.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    train.add_argument(
        "--hyperparams", type=Path, default=None, help="a YAML file instead of the bundled one"
    )
    train.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyperparameter (YAML value)",
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a scenario field (JSON value), repeatable",
    )
    _add_trace_options(train)
    train.add_argument(
        "--checkpoint-interval-s",
        type=float,
        default=None,
        help="wall seconds between checkpoints (default 120; with --resume, the run's own)",
    )
    train.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default 1; with --resume, the run's)"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_evaluate(sub: Any) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="score trained runs and baselines on the same held-out seeds",
        description="Run every trained run and the chosen baselines on the same held-out seeds "
        "(disjoint from training and validation) and write DIR/episodes.csv, DIR/summary.md "
        "(interquartile mean and 95% bootstrap interval across training seeds; paired "
        "differences against the adaptive heuristic) and the plots.",
    )
    evaluate.add_argument("--runs", nargs="*", type=Path, default=[], help="run folders of gpu-alloc train")
    evaluate.add_argument(
        "--baselines", nargs="+", default=["all"], help="baselines to include: names or 'all' (default all)"
    )
    evaluate.add_argument("--episodes", type=int, default=10, help="held-out episodes per policy")
    evaluate.add_argument(
        "--first-seed",
        type=int,
        default=EVALUATION_SEED_BASE,
        help=f"first episode seed (default {EVALUATION_SEED_BASE}, the held-out seeds); use "
        f"{TUNING_SEED_BASE} to compare hyperparameters without looking at the held-out seeds",
    )
    evaluate.add_argument("--scenario", default=None, choices=sorted(SCENARIOS), help="default: the runs'")
    evaluate.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a scenario field (JSON value), repeatable",
    )
    _add_trace_options(evaluate, twin=False)
    evaluate.add_argument(
        "--model", choices=["best", "final"], default="best", help="which model of each run"
    )
    evaluate.add_argument("--out", type=Path, required=True, help="output directory")
    evaluate.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def _needs_train_extra(exc: ImportError) -> int:
    print(
        f"gpu-alloc: error: this command needs the training extra ({exc.name} is missing); "
        "install it with: pip install -e '.[train]'",
        file=sys.stderr,
    )
    return 2


def _run_train(args: argparse.Namespace) -> int:
    from gpu_alloc_env.train.hyperparams import parse_hp_overrides
    from gpu_alloc_env.train.ppo import train
    from gpu_alloc_env.train.run_folder import TrainArgs, resume_args

    if args.resume:
        ignored = [option for option, given in _run_options(args).items() if given]
        if ignored:
            raise ValueError(
                f"--resume continues the run with the settings it started with; {', '.join(ignored)} "
                "would be ignored, so drop them (or start a new run in another --run-dir)"
            )
        run = resume_args(args.run_dir, args.timesteps, args.threads, args.checkpoint_interval_s)
    else:
        args.scenario = args.scenario or "paper"
        args.seed = 0 if args.seed is None else args.seed
        if args.timesteps is None:
            raise ValueError("--timesteps is required for a new run; for example --timesteps 1000000")
        run = TrainArgs(
            scenario=args.scenario,
            seed=args.seed,
            timesteps=args.timesteps,
            run_dir=str(args.run_dir),
            hyperparams_file=str(args.hyperparams) if args.hyperparams else None,
            hp_overrides=parse_hp_overrides(args.hp),
            scenario_overrides=scenario_overrides(args),
            checkpoint_interval_s=120.0 if args.checkpoint_interval_s is None else args.checkpoint_interval_s,
            threads=1 if args.threads is None else args.threads,
        )
    run_dir = train(run, resume=args.resume, progress_bar=not args.no_progress, command=args.command_line)
    outputs = ("model.zip", "best_model.zip", "evaluations.npz", "tb/")
    written = [name for name in outputs if (run_dir / name).exists()]
    print(f"trained {run_dir}: {', '.join(written)}")
    if not (run_dir / "evaluations.npz").exists():
        print(
            "no validation ran (the run is shorter than eval_freq_steps), so best_model.zip is the "
            "final model; lower it with --hp eval_freq_steps=N to validate short runs"
        )
    return 0


def _run_options(args: argparse.Namespace) -> dict[str, bool]:
    """The options of ``gpu-alloc train`` that set up a new run, and whether each was given."""
    given = {
        "--scenario": args.scenario is not None,
        "--seed": args.seed is not None,
        "--hyperparams": args.hyperparams is not None,
        "--hp": bool(args.hp),
        "--set": bool(args.overrides),
        "--twin": args.twin is not None,
        "--trace": args.trace is not None,
    }
    for dest in TRACE_OPTIONS:
        given[f"--{dest.replace('_', '-')}"] = getattr(args, dest) is not None
    return given


def _run_evaluate(args: argparse.Namespace) -> int:
    from gpu_alloc_env.train.evaluate import run_evaluate

    text = run_evaluate(
        run_dirs=args.runs,
        baselines=args.baselines,
        episodes=args.episodes,
        out_dir=args.out,
        scenario=args.scenario,
        scenario_overrides=scenario_overrides(args),
        model=args.model,
        plots=not args.no_plots,
        first_seed=args.first_seed,
        command=args.command_line,
    )
    print(text)
    print(f"wrote {args.out / 'episodes.csv'} and {args.out / 'summary.md'}")
    return 0


def _run_experiment(args: argparse.Namespace) -> int:
    from gpu_alloc_env.train.experiment import run_experiment

    text = run_experiment(
        scenario=args.scenario,
        seeds=args.seeds,
        timesteps=args.timesteps,
        runs_dir=args.runs_dir,
        out_dir=args.out,
        episodes=args.episodes,
        parallel=args.parallel,
        hp=args.hp,
        overrides=scenario_overrides(args),
    )
    print(text)
    print(f"wrote {args.out / 'episodes.csv'}, {args.out / 'summary.md'} and the plots")
    return 0


def _run_twin(args: argparse.Namespace) -> int:
    from gpu_alloc_env.twin_report import report_markdown

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    lines = [
        "# Synthetic twins of the trace scenarios",
        "",
        f"Command: `{args.command_line}`. Each twin is fitted to the part of its trace that the "
        "scenario replays (gpu_alloc_env/twin.py, docs/MODEL.md section 1.9).",
    ]
    for name in args.scenario:
        config = make_scenario(name, **scenario_overrides(args, name))
        lines += ["", *report_markdown(config, args.episodes)]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0


def _check_out(args: argparse.Namespace) -> None:
    """``--out`` must be a directory (a Markdown file for ``gpu-alloc twin``) or not exist yet."""
    out: Path | None = getattr(args, "out", None)
    if out is None:
        return
    if args.command == "twin" and out.is_dir():
        raise ConfigError(f"--out {out} is a directory; pass the path of the Markdown file to write")
    if args.command != "twin" and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a directory for the outputs (created if missing)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gpu-alloc``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["gpu-alloc", *(sys.argv[1:] if argv is None else argv)])
    try:
        status = _dispatch(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below, not at interpreter exit
    except ImportError as exc:
        if exc.name in ("stable_baselines3", "torch", "yaml", "matplotlib", "tqdm", "rich", "tensorboard"):
            return _needs_train_extra(exc)
        raise
    except BrokenPipeError:
        # The reader of the output went away (``gpu-alloc serving ... | head``): stop quietly, as
        # command-line tools do, without a second error when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ConfigError, ValueError, RuntimeError, OSError) as exc:
        print(f"gpu-alloc: error: {exc}", file=sys.stderr)
        return 2
    if status is None:
        parser.error(f"unknown command {args.command!r}")
    return status


def _dispatch(args: argparse.Namespace) -> int | None:
    """Run the command ``args`` name; ``None`` for an unknown one."""
    _check_out(args)
    if args.command == "compare":
        from gpu_alloc_env.train.compare import run_compare

        config = make_scenario(args.scenario, **scenario_overrides(args))
        _, text = run_compare(
            config, args.episodes, args.seed, args.out, args.policies, command=args.command_line
        )
        print(text)
        print(f"wrote {args.out / 'episodes.csv'} and {args.out / 'summary.md'}")
        return 0
    if args.command == "train":
        return _run_train(args)
    if args.command == "evaluate":
        return _run_evaluate(args)
    if args.command == "experiment":
        return _run_experiment(args)
    if args.command == "twin":
        return _run_twin(args)
    if args.command == "serving":
        from gpu_alloc_env.train.serving import run_serving

        print(
            run_serving(
                model=args.model,
                gpu=args.gpu,
                tensor_parallel=args.tensor_parallel,
                dtype=args.dtype,
                concurrency=args.concurrency,
                input_tokens=args.input_tokens,
                output_tokens=args.output_tokens,
                as_json=args.json,
                platform=args.platform,
            )
        )
        return 0
    if args.command == "generalise":
        from gpu_alloc_env.train.generalise import run_generalise

        text = run_generalise(
            args.seeds,
            args.timesteps,
            args.runs_dir,
            args.out,
            args.episodes,
            args.parallel,
            command=args.command_line,
        )
        print(text, end="")
        print(f"wrote {args.out / 'summary.md'}")
        return 0
    return None


if __name__ == "__main__":
    raise SystemExit(main())
