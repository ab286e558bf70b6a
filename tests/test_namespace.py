"""One import root: the package installs only ``gpu_alloc_env``, and works beside a user's own modules."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHADOW = 'raise SystemExit("the user\'s own {name}.py was imported")\n'


def test_the_distribution_installs_one_top_level_package() -> None:
    distribution = importlib.metadata.distribution("gpu-alloc-env")
    assert (distribution.read_text("top_level.txt") or "").split() == ["gpu_alloc_env"]
    (script,) = [e for e in distribution.entry_points if e.group == "console_scripts"]
    assert (script.name, script.value) == ("gpu-alloc", "gpu_alloc_env.train.cli:main")
    assert resources.files("gpu_alloc_env.train").joinpath("hyperparams.yml").is_file()


def _shadowed_dir(tmp_path: Path) -> Path:
    """A working directory with modules named like the project's folders, as RL projects often have."""
    for name in ("train", "baselines"):
        (tmp_path / f"{name}.py").write_text(SHADOW.format(name=name))
    return tmp_path


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)


def test_imports_and_the_command_work_beside_a_users_train_and_baselines_modules(tmp_path: Path) -> None:
    cwd = _shadowed_dir(tmp_path)
    imports = (
        "import gpu_alloc_env.baselines, gpu_alloc_env.train.cli, gpu_alloc_env.train.ppo; "
        "from gpu_alloc_env.baselines import AdaptivePolicy; print(AdaptivePolicy.name)"
    )
    done = _run([sys.executable, "-c", imports], cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "adaptive"
    serving = [
        "serving",
        "--model",
        "llama-3.1-8b",
        "--gpu",
        "h100-80gb",
        "--tensor-parallel",
        "1",
        "--dtype",
        "bf16",
        "--concurrency",
        "2",
        "--input-tokens",
        "64",
        "--output-tokens",
        "8",
        "--json",
    ]
    for command in (
        [sys.executable, "-m", "gpu_alloc_env.train", *serving],
        [str(Path(sys.executable).with_name("gpu-alloc")), *serving],
    ):
        done = _run(command, cwd)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)[0]["concurrency"] == 2


def test_the_repositorys_scripts_run_from_another_directory(tmp_path: Path) -> None:
    cwd = _shadowed_dir(tmp_path)
    scripts = {
        "train/ppo.py": "gpu-alloc train",
        "train/evaluate.py": "gpu-alloc evaluate",
        "train/experiment.py": "gpu-alloc experiment",
        "train/generalise.py": "gpu-alloc generalise",
        "baselines/compare.py": "gpu-alloc compare",
    }
    found = [str(p.relative_to(ROOT)) for d in ("train", "baselines") for p in (ROOT / d).glob("*.py")]
    assert sorted(found) == sorted(scripts)
    for script, usage in scripts.items():
        done = _run([sys.executable, str(ROOT / script), "--help"], cwd)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"usage: {usage}")
