"""summary.json of a phase: headline numbers, the resolved parameters, the hardware, and whether it was a smoke run.

06_compare and the HTML index read only these files (plus the run folders), so runs made elsewhere can be copied in."""
from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path
from typing import Any

from . import paths
from .ioutil import atomic_write_json


def hardware_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
    }
    try:
        import psutil

        info["ram_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # psutil missing is not worth failing a report over
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpus"] = [
                {
                    "name": torch.cuda.get_device_name(i),
                    "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
                    "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
                }
                for i in range(torch.cuda.device_count())
            ]
        else:
            info["gpus"] = []
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hardware_line(hw: dict[str, Any] | None = None) -> str:
    """One line for figure captions: what produced this number (this machine, or `hw`: a summary's recorded
    hardware_info)."""
    hw = hardware_info() if hw is None else hw
    gpus = hw.get("gpus") or []
    if gpus:
        return f"{len(gpus)}× {gpus[0]['name']} ({gpus[0]['memory_gib']} GiB)"
    return f"CPU only: {hw.get('cpu', 'unknown')}, {hw.get('cpu_cores', '?')} cores"


def write_summary(output_dir: str | os.PathLike, phase: str, headline: dict[str, Any], params: dict[str, Any],
                  smoke: bool, **extra: Any) -> Path:
    out = paths.resolve(output_dir)
    doc = {
        "phase": phase,
        "smoke": bool(smoke),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "headline": headline,
        "params": params,
        "hardware": hardware_info(),
        **extra,
    }
    return atomic_write_json(out / "summary.json", doc)
