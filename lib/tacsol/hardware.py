"""Hardware profiles (``lib/tacsol/data/hardware/*.json``) and the training choices they imply.

A profile is data: memory, compute capability, bandwidth, peak 16-bit tensor throughput and three capability flags
(native bf16, FlashAttention-2, bitsandbytes NF4). :func:`choices` is the one place that turns a profile (and a
requested dtype and quantization) into :class:`Choices`: compute dtype, attention implementation, loss scaling. An
RTX 8000 (sm_75) runs in fp16 with loss scaling and SDPA, Ampere or newer in bf16 with FlashAttention-2. Loading,
training, inference, the launcher and the memory estimator all ask it.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .params import ParamsError

DATA_DIR = Path(__file__).resolve().parent / "data" / "hardware"

# Every profile must state these (a missing one is an error naming it; no silent defaults for facts).
REQUIRED_FIELDS = {
    "name": str,
    "display": str,
    "kind": str,  # "cuda" | "cpu"
    "compute_capability": (str, type(None)),  # "7.5"; None for cpu
    "memory_mib": int,  # total device memory as nvidia-smi reports it
    "memory_bandwidth_gbs": (int, float),
    "peak_tflops_16bit": (int, float),  # dense fp16/bf16 tensor-core peak (datasheet)
    "bf16_native": bool,
    "flash_attention_2": bool,
    "nf4": bool,
}


class HardwareError(ParamsError):
    """A hardware profile is unknown or lacks / mistypes a field."""


@dataclass(frozen=True)
class Hardware:
    name: str
    display: str
    kind: str
    compute_capability: str | None
    memory_mib: int
    memory_bandwidth_gbs: float
    peak_tflops_16bit: float
    bf16_native: bool
    flash_attention_2: bool
    nf4: bool
    count: int = 1
    interconnect: str = ""
    sources: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 2**20

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024

    def with_count(self, n: int) -> "Hardware":
        return replace(self, count=int(n))


def validate_profile(data: dict[str, Any], where: str) -> Hardware:
    if not isinstance(data, dict):
        raise HardwareError(f"{where}: a hardware profile must be a JSON object")
    for key, typ in REQUIRED_FIELDS.items():
        if key not in data:
            raise HardwareError(f"{where}: hardware profile lacks required field {key!r}")
        if isinstance(data[key], bool) and typ in (int, (int, float)):
            raise HardwareError(f"{where}: field {key!r} must be a number, got {data[key]!r}")
        if not isinstance(data[key], typ):
            raise HardwareError(f"{where}: field {key!r} has the wrong type ({type(data[key]).__name__}: {data[key]!r})")
    if data["kind"] not in ("cuda", "cpu"):
        raise HardwareError(f"{where}: field 'kind' must be 'cuda' or 'cpu', got {data['kind']!r}")
    if data["kind"] == "cuda" and not data["compute_capability"]:
        raise HardwareError(f"{where}: field 'compute_capability' is required for a cuda profile")
    if data["memory_mib"] <= 0:
        raise HardwareError(f"{where}: field 'memory_mib' must be positive, got {data['memory_mib']}")
    known = set(REQUIRED_FIELDS) | {"count", "interconnect", "sources"}
    return Hardware(**{k: data[k] for k in REQUIRED_FIELDS}, count=int(data.get("count", 1)),
                    interconnect=data.get("interconnect", ""), sources=data.get("sources", ""),
                    extra={k: v for k, v in data.items() if k not in known})


def list_profiles() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.json"))


def load_profile(name_or_path: str | Path | dict | Hardware) -> Hardware:
    """A profile by name ('rtx8000'), by JSON file path, or from a dict; errors name the missing field."""
    if isinstance(name_or_path, Hardware):
        return name_or_path
    if isinstance(name_or_path, dict):
        return validate_profile(name_or_path, where=f"hardware profile {name_or_path.get('name', '<dict>')!r}")
    p = Path(str(name_or_path))
    if p.suffix == ".json" and p.is_file():
        return validate_profile(json.loads(p.read_text(encoding="utf-8")), where=str(p))
    key = str(name_or_path).lower().replace("_", "-").replace(" ", "")
    aliases = {"rtx-8000": "rtx8000", "quadro-rtx-8000": "rtx8000", "a100": "a100-80gb", "a100-40": "a100-40gb",
               "a100-80": "a100-80gb", "h100": "h100-80gb", "h100-80": "h100-80gb", "rtx-4090": "rtx4090",
               "4090": "rtx4090", "h200-141gb": "h200"}
    key = aliases.get(key, key)
    f = DATA_DIR / f"{key}.json"
    if not f.is_file():
        near = difflib.get_close_matches(key, list_profiles(), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise HardwareError(f"unknown hardware profile {name_or_path!r}{hint}; known: {', '.join(list_profiles())}")
    return validate_profile(json.loads(f.read_text(encoding="utf-8")), where=str(f.name))


# torch.cuda.get_device_name() substrings → profile, most specific first
_DEVICE_PROFILES = (("H200", "h200"), ("H100", "h100-80gb"), ("A100-SXM4-40GB", "a100-40gb"), ("A100", "a100-80gb"),
                    ("RTX 8000", "rtx8000"), ("RTX A6000", "rtx-a6000"), ("4090", "rtx4090"))


def profile_for_device(device_name: str | None) -> str:
    """The profile of a CUDA device by its name (``torch.cuda.get_device_name()``); "cpu" for None/empty."""
    if not device_name:
        return "cpu"
    for token, name in _DEVICE_PROFILES:
        if token in device_name:
            return name
    raise HardwareError(f"no hardware profile for device {device_name!r}; known: {', '.join(list_profiles())}")


def _cc(hw: Hardware) -> tuple[int, int]:
    if not hw.compute_capability:
        return (0, 0)
    major, minor = hw.compute_capability.split(".")
    return int(major), int(minor)


# Compute dtypes by their short names (tacsol.vram's) → torch's names; params may use either.
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
_DTYPE_ALIASES = {**{v: k for k, v in TORCH_DTYPES.items()}, "half": "fp16"}
QUANTIZATIONS = ("none", "nf4", "int8")


def short_dtype(name: str) -> str:
    """"bf16" | "fp16" | "fp32" for a short or torch dtype name ("bfloat16", "torch.float16", "half")."""
    key = str(name).strip().lower().removeprefix("torch.")
    key = _DTYPE_ALIASES.get(key, key)
    if key not in TORCH_DTYPES:
        raise HardwareError(f"dtype must be one of {', '.join(TORCH_DTYPES)} (or {', '.join(TORCH_DTYPES.values())}), "
                            f"got {name!r}")
    return key


@dataclass(frozen=True)
class Choices:
    """What running a model on a hardware profile uses, for training and inference alike."""
    hardware: str
    dtype: str  # compute dtype, short name: bf16 | fp16 | fp32
    attn_implementation: str  # flash_attention_2 | sdpa
    quantization: str = "none"  # none | nf4 (QLoRA: 4-bit weights, compute and storage in `dtype`) | int8

    @property
    def torch_dtype(self) -> str:
        return TORCH_DTYPES[self.dtype]

    @property
    def loss_scaling(self) -> bool:
        """fp16 needs dynamic loss scaling (Trainer ``fp16=True``, DeepSpeed ``"fp16": {"enabled": true}``)."""
        return self.dtype == "fp16"

    def runnable_here(self) -> "Choices":
        """These choices as this machine can run them: FlashAttention-2 needs the flash_attn package; without it
        PyTorch SDPA (the profile allows FA2, the environment does not provide it)."""
        import importlib.util

        if self.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
            return replace(self, attn_implementation="sdpa")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"hardware": self.hardware, "dtype": self.dtype, "torch_dtype": self.torch_dtype,
                "attn_implementation": self.attn_implementation, "quantization": self.quantization,
                "loss_scaling": self.loss_scaling}


def choices(profile: str | Hardware | dict | None, *, dtype: str | None = "auto", quantization: str = "none",
            attn_implementation: str | None = None) -> Choices:
    """Compute dtype and attention implementation on this hardware; a requested dtype / attention is checked.

    - dtype: bf16 needs native support (compute capability >= 8.0, NVIDIA CUDA docs); otherwise fp16 with dynamic
      loss scaling (the RTX 8000 case). CPU: fp32 (a requested bf16 is allowed there: CPU autocast).
    - attention: FlashAttention-2 needs Ampere or newer (flash-attn README); elsewhere PyTorch SDPA, whose
      memory-efficient kernel also avoids materialising the s x s score matrix.
    - quantization: nf4 needs bitsandbytes 4-bit support on the device (field 'nf4').
    """
    hw = load_profile(profile or "cpu")
    ampere = _cc(hw) >= (8, 0)
    bf16_ok = hw.bf16_native and ampere
    fa2_ok = hw.flash_attention_2 and ampere
    if hw.kind == "cpu":
        default_dtype, default_attn = "fp32", "sdpa"
    else:
        default_dtype = "bf16" if bf16_ok else "fp16"
        default_attn = "flash_attention_2" if fa2_ok else "sdpa"
    chosen = default_dtype if dtype in (None, "", "auto") else short_dtype(dtype)
    if chosen == "bf16" and hw.kind == "cuda" and not bf16_ok:
        raise HardwareError(f"'dtype' is bf16 but hardware {hw.name!r} has no native bf16 (field 'bf16_native', "
                            "compute capability >= 8.0); use fp16 with loss scaling")
    attn = attn_implementation or default_attn
    if attn == "flash_attention_2" and not fa2_ok:
        raise HardwareError(f"'attn_implementation' is flash_attention_2 but hardware {hw.name!r} lacks it "
                            "(field 'flash_attention_2': needs Ampere or newer)")
    quantization = (quantization or "none").lower()
    if quantization not in QUANTIZATIONS:
        raise HardwareError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if quantization == "nf4" and not hw.nf4:
        raise HardwareError(f"quantization nf4 needs bitsandbytes 4-bit support, which hardware {hw.name!r} lacks "
                            "(field 'nf4')")
    return Choices(hw.name, chosen, attn, quantization)
