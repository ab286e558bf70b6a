"""Options shared by the ``gpu-alloc`` commands, and how they become scenario overrides.

Every command that runs a scenario takes ``--scenario`` (:func:`add_scenario_option`), ``--set
FIELD=VALUE`` (:func:`add_set_option`) and the trace options (:func:`add_trace_options`);
:func:`scenario_overrides` turns them into the overrides of the scenario, in that order, and
renames the scenario after the trace it then replays.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_alloc_env.config import TRACE_FILE_FIELDS, ConfigError, ScenarioConfig, TraceSpec
from gpu_alloc_env.data import TRACES
from gpu_alloc_env.scenarios import PRESET_PARAMETERS, SCENARIOS, make_scenario
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


def base_scenario(
    args: argparse.Namespace, scenario: str | None = None, **parameters: Any
) -> ScenarioConfig | None:
    """The scenario a command's options apply to.

    That is ``scenario``, ``--scenario`` (with its preset's ``parameters``, such as ``fleet``'s
    ``num_agents``), the first run's, or ``paper`` for ``evaluate`` without runs.
    """
    name = scenario or getattr(args, "scenario", None)
    if isinstance(name, str):
        return make_scenario(name, **parameters)
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
    name = scenario or getattr(args, "scenario", None)
    preset = {key: overrides[key] for key in PRESET_PARAMETERS.get(str(name), ()) if key in overrides}
    fields = {key: value for key, value in overrides.items() if key not in preset}
    base = base_scenario(args, scenario, **preset)
    if base is not None and fields:
        base = base.replace(**fields)
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


def add_trace_options(parser: argparse.ArgumentParser, twin: bool = True) -> None:
    """The ``trace replay`` option group (``--trace`` and ``--trace-*``; ``--twin`` when ``twin``)."""
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


def add_scenario_option(
    parser: argparse.ArgumentParser, default: str | None, help_text: str | None = None
) -> None:
    """``--scenario``: a preset name."""
    parser.add_argument(
        "--scenario", default=default, choices=sorted(SCENARIOS), help=help_text or f"default {default}"
    )


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """``--set FIELD=VALUE``, repeatable: a scenario field, its value read as JSON."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a scenario field (JSON value), repeatable",
    )


def add_tuned_option(parser: argparse.ArgumentParser) -> None:
    """``--tuned DIR``: tuned baselines' settings (``gpu-alloc tune --out DIR``), searched first."""
    parser.add_argument(
        "--tuned",
        type=Path,
        default=None,
        help="directory of tuned settings (gpu-alloc tune --out), searched before the package's",
    )


def check_out(args: argparse.Namespace) -> None:
    """``--out`` must be a directory (a Markdown file for ``gpu-alloc twin``) or not exist yet."""
    out: Path | None = getattr(args, "out", None)
    if out is None:
        return
    if args.command == "twin" and out.is_dir():
        raise ConfigError(f"--out {out} is a directory; pass the path of the Markdown file to write")
    if args.command != "twin" and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a directory for the outputs (created if missing)")
