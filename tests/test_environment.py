"""The conda environment installs exactly the pip pins (it reads requirements.txt), and torch stays the CPU pin."""
import re

import yaml

from tacsol import paths

ROOT = paths.repo_root()


def _pins():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
            assert m, f"requirements.txt: every line must be an exact pin, got {line!r}"
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_requirements_are_exact_pins_with_cpu_torch():
    pins = _pins()
    assert pins["torch"] == "2.13.0"
    for pkg in ["jupyterlab", "papermill", "transformers", "peft", "bitsandbytes", "accelerate", "datasets",
                "matplotlib", "seaborn", "nbval"]:
        assert pkg in pins, f"user-requested package {pkg} is not pinned"


def test_environment_yml_reads_the_same_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.txt" in pip_section
    # nothing pinned twice with another version
    pins = _pins()
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name = re.split(r"[=<>! ]", dep)[0].lower()
            assert name not in pins or pins[name] in dep, f"environment.yml pins {dep} but requirements.txt has {pins[name]}"
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_installed_versions_match_pins():
    from importlib.metadata import version, PackageNotFoundError

    pins = _pins()
    drift = {}
    for pkg, want in pins.items():
        try:
            have = version(pkg)
        except PackageNotFoundError:
            drift[pkg] = (want, None)
            continue
        if have.split("+")[0] != want:
            drift[pkg] = (want, have)
    assert not drift, f"installed packages differ from requirements.txt: {drift}"
