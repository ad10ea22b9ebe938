"""Hardware profiles → compute dtype and attention implementation; missing fields are named."""
import json

import pytest

from tacsol import hardware as H


def test_rtx8000_trains_fp16_with_sdpa():
    ch = H.choices("rtx8000")
    assert (ch.dtype, ch.torch_dtype, ch.attn_implementation, ch.loss_scaling) == ("fp16", "float16", "sdpa", True)


@pytest.mark.parametrize("name", ["a100-40gb", "a100-80gb", "h100-80gb", "h200", "rtx4090", "rtx-a6000"])
def test_ampere_and_newer_train_bf16_with_fa2(name):
    ch = H.choices(name)
    assert (ch.dtype, ch.attn_implementation, ch.loss_scaling) == ("bf16", "flash_attention_2", False)


def test_cpu_profile():
    ch = H.choices("cpu")
    assert ch.dtype == "fp32" and ch.attn_implementation == "sdpa"
    assert H.choices(None) == ch and H.choices("cpu", dtype="bfloat16").dtype == "bf16"  # CPU autocast


def test_requested_dtype_attention_and_quantization_are_checked():
    assert H.choices("rtx8000", dtype="float32").torch_dtype == "float32"
    assert H.choices("h100", dtype="torch.float16").dtype == "fp16"
    with pytest.raises(H.HardwareError, match="'dtype' is bf16 but hardware 'rtx8000' has no native bf16"):
        H.choices("rtx8000", dtype="bf16")
    with pytest.raises(H.HardwareError, match="flash_attention_2 but hardware 'rtx8000' lacks it"):
        H.choices("rtx8000", attn_implementation="flash_attention_2")
    with pytest.raises(H.HardwareError, match="quantization must be one of none, nf4, int8"):
        H.choices("rtx8000", quantization="gptq")
    with pytest.raises(H.HardwareError, match="dtype must be one of"):
        H.choices("rtx8000", dtype="float8")
    assert H.choices("rtx8000", quantization="NF4").quantization == "nf4"


def test_runnable_here_falls_back_to_sdpa_without_flash_attn(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "flash_attn" else real(n, *a))
    assert H.choices("h100").runnable_here().attn_implementation == "sdpa"
    assert H.choices("rtx8000").runnable_here() == H.choices("rtx8000")


def test_memory_sizes():
    assert H.load_profile("rtx8000").memory_gib == 48
    assert round(H.load_profile("h200").memory_gib) == 140
    assert H.load_profile("A100").name == "a100-80gb"


def test_missing_field_is_named(tmp_path):
    data = json.loads((H.DATA_DIR / "rtx8000.json").read_text())
    del data["bf16_native"]
    f = tmp_path / "gpu.json"
    f.write_text(json.dumps(data))
    with pytest.raises(H.HardwareError, match="lacks required field 'bf16_native'"):
        H.load_profile(str(f))
    data["bf16_native"] = "yes"
    with pytest.raises(H.HardwareError, match="'bf16_native'"):
        H.load_profile(data)
    with pytest.raises(H.HardwareError, match="unknown hardware profile 'rtx9000'"):
        H.load_profile("rtx9000")


def test_profile_for_device_names():
    from tacsol.hardware import HardwareError, profile_for_device

    assert profile_for_device("NVIDIA H200") == "h200"
    assert profile_for_device("NVIDIA H100 80GB HBM3") == "h100-80gb"
    assert profile_for_device("Quadro RTX 8000") == "rtx8000"
    assert profile_for_device("NVIDIA A100-SXM4-40GB") == "a100-40gb"
    assert profile_for_device(None) == "cpu"
    with pytest.raises(HardwareError, match="no hardware profile for device 'Tesla T4'"):
        profile_for_device("Tesla T4")


def test_hardware_line_describes_recorded_hardware():
    """A published run's caption names the machine that produced it (its summary's hardware), not this one."""
    from tacsol.summary import hardware_line

    assert hardware_line({"cpu": "AMD EPYC", "cpu_cores": 2, "gpus": []}) == "CPU only: AMD EPYC, 2 cores"
    assert hardware_line({"gpus": [{"name": "NVIDIA H200", "memory_gib": 139.8}]}) == "1× NVIDIA H200 (139.8 GiB)"
    assert hardware_line().startswith(("CPU only: ", "1× ", "2× ", "4× ", "8× "))
