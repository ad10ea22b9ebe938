"""Prepare every notebook for nbval: inject tests/params/<stem>.yaml (shrunken settings) with papermill --prepare-only.

``python -m tacsol.nbtest prepare --out .nbtest`` then ``pytest .nbtest --nbval-lax``."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from . import params as P
from . import paths


def prepare(out: Path) -> list[Path]:
    import papermill as pm

    out = paths.resolve(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = []
    for nb in paths.list_notebooks():
        test_params = paths.repo_root() / "tests" / "params" / f"{nb.stem}.yaml"
        values = P.load_yaml(test_params) if test_params.exists() else {}
        spec = P.notebook_parameters(nb)
        if "output_dir" in spec:
            values.setdefault("output_dir", str(out / "outputs" / nb.stem))
        P.validate(values, spec, where=f"{test_params.name if test_params.exists() else 'test defaults'}")
        target = out / nb.name
        pm.execute_notebook(str(nb), str(target), parameters=values, prepare_only=True, log_output=False,
                            progress_bar=False)
        written.append(target)
    # collected after the notebooks (names sort after NN_*.ipynb): asserts their summary.json headlines
    shutil.copy2(paths.repo_root() / "tests" / "nbtest_headlines.py", out / "test_headlines.py")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tacsol.nbtest", description=__doc__)
    ap.add_argument("action", choices=["prepare"])
    ap.add_argument("--out", default=".nbtest", type=Path)
    args = ap.parse_args(argv)
    for p in prepare(args.out):
        print(f"prepared {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
