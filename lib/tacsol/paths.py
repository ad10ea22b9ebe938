"""Where things live. Relative paths in params are relative to the repository root, wherever the kernel runs
(papermill from the root, JupyterLab from notebooks/, nbval from .nbtest/)."""
from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    env = os.environ.get("TACSOL_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for cand in (start, *start.parents):
            if (cand / "notebooks").is_dir() and (cand / "lib" / "tacsol").is_dir():
                return cand
    return Path.cwd()


def resolve(path: str | os.PathLike) -> Path:
    p = Path(os.path.expanduser(os.fspath(path)))
    return p if p.is_absolute() else repo_root() / p


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def params_dir() -> Path:
    return repo_root() / "params"


def outputs_dir() -> Path:
    """outputs/ of the repo, or TACSOL_OUTPUTS (tests point it at a temporary folder)."""
    env = os.environ.get("TACSOL_OUTPUTS")
    return Path(env).resolve() if env else repo_root() / "outputs"


def cache_dir() -> Path:
    d = Path(os.environ.get("TACSOL_CACHE", repo_root() / "outputs" / "cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def node_modules() -> Path:
    return repo_root() / "node_modules"


def list_notebooks() -> list[Path]:
    """Numbered notebooks in run order: notebooks/NN_name.ipynb."""
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def notebook_path(key: str | int) -> Path:
    """Find a notebook by number ('02', 2), stem ('02_vram_estimation') or path."""
    if isinstance(key, int):
        key = f"{key:02d}"
    key = str(key)
    p = Path(key)
    if p.suffix == ".ipynb" and resolve(p).exists():
        return resolve(p)
    for nb in list_notebooks():
        if nb.stem == key or nb.stem.split("_", 1)[0] == key.zfill(2):
            return nb
    known = ", ".join(nb.stem for nb in list_notebooks()) or "none"
    raise FileNotFoundError(f"no notebook matches {key!r} (known: {known})")
