import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_adapter(tmp_path_factory) -> str:
    """A LoRA adapter trained for 2 steps on the shrunken random Llama (tests/fixtures/train/tiny.py)."""
    sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "train"))
    import tiny

    from tacsol import train

    base = tmp_path_factory.mktemp("tiny_adapter")
    model = tiny.build(base / "model")
    res = train.run({"output_dir": str(base / "run"), "model": str(model), "dataset": "tests/fixtures/train/records.jsonl",
                     "max_steps": 2,
                     "batch_size": 2, "eval_examples": 2, "save_steps": 100, "max_seq_length": 512})
    return res["adapter_dir"]
