"""Dependencies point one way: config -> core -> env -> policies -> evaluation -> training -> CLI.

Every module of the package has a layer (``docs/ARCHITECTURE.md``); a module imports only from its
own layer or lower ones. A new module must be given a layer here, or this test fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gpu_alloc_env"

LAYERS: dict[str, int] = {
    # 0: plain definitions, no project imports
    "arrays": 0,
    "errors": 0,
    "seeds": 0,
    "stats": 0,
    "progress": 0,
    "data": 0,
    "_kernel_cache": 0,
    "_font": 0,
    # 1: specifications: the catalogue and the validated configuration
    "serving": 1,
    "serving.calibration": 1,
    "serving.hardware": 1,
    "serving.models": 1,
    "serving.perf": 1,
    "serving.platforms": 1,
    "serving.engine": 1,
    "config": 1,
    # 2: reading traces and building scenarios from them (file I/O lives here, never in the core)
    "traces": 2,
    "twin": 2,
    "scenarios": 2,
    # 3: the simulator core: arrays and specs in, arrays out
    "core": 3,
    "core.allocation": 3,
    "core.closed_loop": 3,
    "core.engine": 3,
    "core.kernel": 3,
    "core.metrics": 3,
    "core.replay": 3,
    "core.reward": 3,
    "core.simulator": 3,
    "core.state": 3,
    "core.workload": 3,
    # 4: the Gymnasium adapter
    "trace_replay": 4,
    "observation": 4,
    "render": 4,
    "env": 4,
    "vector": 4,
    "ray_registry": 4,
    "": 4,  # the package itself registers the environments
    # 5: policies
    "policy": 5,
    "baselines": 5,
    "baselines.adaptive": 5,
    "baselines.round_robin": 5,
    "baselines.static": 5,
    "baselines.tuned": 5,
    "baselines.provisioned": 5,
    "baselines.autoscaler": 5,
    "baselines.forecast": 5,
    "baselines.fluid_plan": 5,
    "baselines.oracle": 5,
    "baselines.bound": 5,
    # 6: the evaluation harness and reports
    "evaluation": 6,
    "twin_report": 6,
    "limits": 6,
    # 7: training and the commands' implementations
    "train": 7,
    "train.actions": 7,
    "train.hyperparams": 7,
    "train.run_folder": 7,
    "train.callbacks": 7,
    "train.learned": 7,
    "train.stepper": 7,
    "train.vec_env": 7,
    "train.policy_env": 7,
    "train.ppo": 7,
    "train.rllib_model": 7,
    "train.rllib_backend": 7,
    "train.sweep_spec": 7,
    "train.sweep": 7,
    "train.plots": 7,
    "train.comparison": 7,
    "train.summary": 7,
    "train.evaluate": 7,
    "train.experiment": 7,
    "train.generalise": 7,
    "train.compare": 7,
    "train.serving": 7,
    "train.tune": 7,
    "train.benchmark": 7,
    "train.bench": 7,
    # 8: the command line: options shared by the commands, one module per command
    "train.cli.options": 8,
    "train.cli.compare": 8,
    "train.cli.train": 8,
    "train.cli.evaluate": 8,
    "train.cli.experiment": 8,
    "train.cli.twin": 8,
    "train.cli.generalise": 8,
    "train.cli.serving": 8,
    "train.cli.tune": 8,
    "train.cli.benchmark": 8,
    "train.cli.bench": 8,
    "train.cli.sweep": 8,
    "train.cli": 8,
    "train.__main__": 8,
}

CORE_FORBIDDEN = ("gymnasium", "torch", "stable_baselines3", "warnings", "csv", "json", "io", "pathlib")
"""Third-party and standard modules the core never imports: no RL, no files, no warnings."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path, source: str | None = None) -> set[str]:
    """Absolute names of everything the module at ``path`` imports, relative imports resolved.

    ``source`` replaces the file's text (to check the checker).
    """
    package = ["gpu_alloc_env", *path.relative_to(PACKAGE).parent.parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            if node.module is None:  # from . import x: x is a module of the package
                names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _layer_of(module: str) -> int:
    """The layer of a project module (``gpu_alloc_env.x.y`` -> ``x.y``), or of its nearest parent."""
    name = module.removeprefix("gpu_alloc_env").removeprefix(".")
    while name not in LAYERS:
        name = name.rpartition(".")[0]
    return LAYERS[name]


def test_every_module_has_a_layer() -> None:
    missing = sorted(set(_modules()) - set(LAYERS))
    assert not missing, f"give these modules a layer in tests/test_architecture.py: {missing}"


@pytest.mark.parametrize(("module", "path"), sorted(_modules().items()))
def test_a_module_imports_only_from_its_layer_or_below(module: str, path: Path) -> None:
    own = LAYERS[module]
    upward = sorted(
        name for name in _imports(path) if name.startswith("gpu_alloc_env") and _layer_of(name) > own
    )
    assert not upward, f"gpu_alloc_env.{module} (layer {own}) imports higher layers: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in LAYERS if m == "core" or m.startswith("core.")))
def test_the_core_does_no_rl_no_file_io_and_reads_no_traces(module: str) -> None:
    imports = _imports(_modules()[module])
    assert not [name for name in imports if name.split(".")[0] in CORE_FORBIDDEN]
    assert "gpu_alloc_env.traces" not in imports and "gpu_alloc_env.data" not in imports
    source = _modules()[module].read_text()
    for call in (
        "open(",
        "np.load",
        "np.save",
        "loadtxt",
        "genfromtxt",
        "read_text",
        "write_text",
        "read_bytes",
    ):
        assert call not in source, f"gpu_alloc_env.{module} reads or writes files ({call})"


def test_the_architecture_document_shows_the_same_layers() -> None:
    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    block = text[text.index("```\n0 ") + 4 : text.index("```", text.index("```\n0 ") + 4)]
    shown = {int(line.split()[0]): line for line in block.splitlines() if line.strip()}
    for module, layer in LAYERS.items():
        name = module.split(".")[0]
        if not name or module.startswith("train.") or module.startswith("baselines."):
            continue
        listed = f"{name}/" if "." in module or (PACKAGE / name).is_dir() else name
        assert listed in shown[layer], f"docs/ARCHITECTURE.md does not show {listed} in layer {layer}"


def test_the_import_check_resolves_relative_imports() -> None:
    source = "from ..traces import trace_from_spec\nfrom . import state\nfrom .engine import x\n"
    names = _imports(PACKAGE / "core" / "replay.py", source)
    assert {"gpu_alloc_env.traces", "gpu_alloc_env.core.state", "gpu_alloc_env.core.engine"} <= names
