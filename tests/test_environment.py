"""The locked environment (docs/reproducibility.md "The locked environment"): requirements.lock pins every dependency at one
version, torch at the CPU wheel; environment.yml installs the same file; `make install` installed exactly it."""

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    """name -> version of every line `name==version` of requirements.lock."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version and not re.search(r"[<>~!;\[]", line), f"not an exact pin: {line}"
            pins[canonical(name)] = version
    return pins


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [canonical(re.match(r"[A-Za-z0-9_.\-]+", r).group()) for r in requirements]


def test_every_declared_dependency_is_pinned_and_torch_is_the_cpu_wheel():
    pins = locked()
    assert set(declared()) <= set(pins), sorted(set(declared()) - set(pins))
    assert pins["torch"] == "2.13.0+cpu"
    assert not [name for name in pins if name.startswith("nvidia-")]  # a CUDA build of torch would pull these in


def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert pip == ["-r requirements.lock", "-e ."]
    assert "python=3.11" in env["dependencies"]


@pytest.mark.skipif(
    not (Path(sys.prefix) / ".installed").exists(), reason="not the virtualenv `make install` made (.venv/.installed)"
)
def test_the_virtualenv_holds_exactly_the_locked_versions():
    installed = {canonical(dist.metadata["Name"]): dist.version for dist in importlib.metadata.distributions()}
    installed.pop("covbench")
    for tool in ("pip", "setuptools", "wheel"):  # the venv's own installers, which pip-compile leaves out
        installed.pop(tool, None)
    assert installed == locked()


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 error"), ("", "1 skipped")])
def test_a_missing_data_mirror_fails_under_ci_and_skips_elsewhere(tmp_path, ci, outcome):
    """conftest's `mirror` fixture in a checkout with no shared/data beside it and no COVBENCH_MIRROR."""
    tests = tmp_path / "checkout" / "tests"
    tests.mkdir(parents=True)
    (tests / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tests / "test_needs_data.py").write_text("def test_reads_the_mirror(mirror):\n    assert mirror.is_dir()\n")
    env = {**os.environ, "CI": ci, "COVBENCH_MIRROR": ""}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        cwd=tests.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    assert outcome in done.stdout, done.stdout[-2000:]
    if ci:
        assert "CI=true: a missing mirror fails the run" in done.stdout
