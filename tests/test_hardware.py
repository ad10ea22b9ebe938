"""Hardware profiles → compute dtype and attention implementation; missing fields are named."""
import json

import pytest

from tacsol import hardware as H


def test_rtx8000_trains_fp16_with_sdpa():
    ch = H.training_choices("rtx8000")
    assert ch["dtype"] == "fp16" and ch["loss_scaling"] and ch["attn_implementation"] == "sdpa"
    assert ch["nf4"] and ch["deepspeed_precision"] == {"fp16": {"enabled": True, "loss_scale": 0}}


@pytest.mark.parametrize("name", ["a100-40gb", "a100-80gb", "h100-80gb", "h200", "rtx4090", "rtx-a6000"])
def test_ampere_and_newer_train_bf16_with_fa2(name):
    ch = H.training_choices(name)
    assert (ch["dtype"], ch["attn_implementation"], ch["loss_scaling"]) == ("bf16", "flash_attention_2", False)


def test_cpu_profile():
    ch = H.training_choices("cpu")
    assert ch["dtype"] == "fp32" and ch["attn_implementation"] == "sdpa"


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
