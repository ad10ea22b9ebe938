"""`tacsol` command line. Each subcommand lives in the module that owns the concern; modules load lazily so that
`tacsol --help` answers without importing torch."""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). A module provides build_parser(parser) and main(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "lift": ("tacsol.lift", "lift EVM runtime bytecode (file or hex) to per-function three-address code"),
    "data": ("tacsol.pairs", "build, inspect and import TAC→Solidity datasets (data build | data stats | data import)"),
    "vram": ("tacsol.vram", "estimate per-GPU training memory for a model/plan/hardware, with a fit verdict"),
    "train": ("tacsol.train", "LoRA/QLoRA fine-tuning from a params file (the module launchers start)"),
    "decompile": ("tacsol.infer", "bytecode or TAC → Solidity per function with a trained adapter"),
    "evaluate": ("tacsol.evaluate", "score generations: similarity, edit distance, compile, selector, grounding"),
    "run": ("tacsol.runner", "run one numbered notebook (or all) with papermill into outputs/<run>/ and render HTML"),
}


def _load(name: str):
    module_name, _ = COMMANDS[name]
    return importlib.import_module(module_name)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="tacsol",
        description="tacsol: study kit for LLM decompilation of EVM bytecode (TAC → Solidity).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `tacsol <command> --help` for a command's options.",
    )
    sub = ap.add_subparsers(dest="command", metavar="<command>")
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).build_parser(p)
    args = ap.parse_args(argv)
    if not args.command:
        ap.print_help()
        return 0
    from .ioutil import OutputError
    from .params import ParamsError

    try:
        return int(_load(args.command).main(args) or 0)
    except (ParamsError, OutputError) as exc:  # bad input or an unwritable output: the message says which
        print(f"tacsol {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # any other path the command could not use (a folder that is a file, no permission)
        if exc.filename is None:
            raise
        print(f"tacsol {args.command}: cannot use {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
