"""Model registry: meta-device parameter counts agree with published totals; LoRA counts match docs/references.md;
users can add a model from a config.json file; bad names are refused by name."""
import json

import pytest

from tacsol import models as M

ALL = M.list_models()
REQUIRED = ["Llama-3.2-3B", "Llama-3.1-8B", "Llama-3.1-70B", "Llama-3.1-405B", "Qwen2.5-Coder-32B", "Qwen2.5-72B",
            "CodeLlama-34B", "StarCoder2-15B", "Phi-3-medium-4k", "Codestral-22B", "DeepSeek-Coder-V2-Lite",
            "DeepSeek-V3", "SmolLM2-135M"]


def test_registry_has_the_issue_models():
    assert set(REQUIRED) <= set(ALL)
    assert M.get_model("Codestral-22B").model_type == "mistral"
    assert M.get_model("DeepSeek-Coder-V2-Lite").model_type == "deepseek_v2"
    assert M.get_model("DeepSeek-V3").model_type == "deepseek_v3"


@pytest.mark.parametrize("name", ALL)
def test_meta_count_within_1pct_of_published(name):
    spec = M.get_model(name)
    assert spec.published_params and spec.published_params_source
    count = M.param_count(spec)
    assert abs(count - spec.published_params) / spec.published_params < 0.01, (name, count, spec.published_params)


def test_meta_count_is_a_real_instantiation_not_the_cache():
    spec = M.get_model("SmolLM2-135M")
    model = M.meta_model(spec)
    assert next(model.parameters()).device.type == "meta"
    assert M.count_facts(model)["total_params"] == M.facts(spec, use_cache=False)["total_params"] == 134_515_008


@pytest.mark.parametrize("name,expected", [("Llama-3.2-3B", 24.3e6), ("Llama-3.1-8B", 41.9e6),
                                           ("Qwen2.5-Coder-32B", 134.2e6), ("Llama-3.1-70B", 207.1e6)])
def test_lora_r16_seven_projections_matches_reference(name, expected):
    assert round(M.lora_params(name, 16) / 1e5) == round(expected / 1e5)


def test_fused_module_lora_counts_one_input_per_group():
    # Qwen-1 adapts c_attn (4096 -> 3×4096) with one A matrix: r·(4096 + 12288), not 3·r·(4096 + 4096)
    h, i, r = 4096, 11008, 64
    per_layer = r * ((h + 3 * h) + (h + h) + 2 * (h + i) + (i + h))
    assert M.lora_params("Qwen-7B", r) == 32 * per_layer


def test_moe_active_params_and_facts():
    lite = M.get_model("DeepSeek-Coder-V2-Lite")
    assert lite.is_moe
    total, active = M.param_count(lite), M.active_params(lite)
    assert 15.5e9 < total < 16.0e9  # not a 33B dense model
    assert 2.2e9 < active < 2.8e9  # 2.4B active published (ours counts both embedding matrices)
    v3 = M.get_model("DeepSeek-V3")
    assert abs(M.active_params(v3) - 37e9) / 37e9 < 0.03
    f = M.facts(v3)
    assert f["expert_params"] > 0.95 * f["total_params"] * 0.97


def test_facts_tied_and_lm_head():
    small = M.facts("Llama-3.2-3B")
    assert small["tied_embeddings"] and small["lm_head_params"] == 0
    big = M.facts("Llama-3.1-8B")
    assert not big["tied_embeddings"] and big["lm_head_params"] == 128256 * 4096
    assert big["linear"]["q_proj"]["count"] == 32


def test_user_model_from_config_file(tmp_path):
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
           "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 1000,
           "max_position_embeddings": 2048, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    d = tmp_path / "my-model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    spec = M.resolve(str(d / "config.json"))
    assert spec.name == "my-model" and spec.role == "user"
    layer = 256 * 256 * 2 + 2 * 256 * 128 + 3 * 256 * 512 + 2 * 256
    assert M.param_count(spec) == 2 * 1000 * 256 + 3 * layer + 256


def test_user_model_by_hub_id_path_works_on_a_local_snapshot(tmp_path):
    """from_hub goes through AutoConfig.from_pretrained; a local snapshot folder exercises it offline."""
    src = M.get_model("SmolLM2-135M")
    cfg = M.hf_config(src)
    cfg.save_pretrained(tmp_path)
    spec = M.from_hub(str(tmp_path), name="smol-local")
    assert spec.model_type == "llama"
    assert M.param_count(spec) == M.param_count(src)
    with pytest.raises(M.ModelError, match="cannot fetch config"):
        M.from_hub(str(tmp_path / "missing"))


def test_unknown_and_bad_inputs_name_the_item(tmp_path):
    with pytest.raises(M.ModelError, match="unknown model 'Qwen2.5-Coder-31B'.*did you mean"):
        M.get_model("Qwen2.5-Coder-31B")
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(M.ModelError, match="model_type"):
        M.from_config_file(tmp_path / "config.json")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    with pytest.raises(M.ModelError, match="num_hidden_layers"):
        M.from_config_file(tmp_path / "config.json")
    with pytest.raises(M.ModelError, match="do not exist"):
        M.lora_params("Llama-3.2-3B", 16, ["c_attn"])
    with pytest.raises(M.ModelError, match="not found"):
        M.from_config_file(tmp_path / "nope.json")


def test_embedded_model_names_have_one_home():
    """loading, tokens, launch and profile each kept their own spellings of the embedded model, and they disagreed:
    'embedded' and 'embedded:smollm2-135m-instruct' loaded the model but had no memory estimate (the launcher's table
    knew one name), 'smollm2' counted tokens and capped lengths but did not load. One table in the registry now."""
    from tacsol import launch, profile, tokens

    emb = M.embedded()
    assert emb.name == "SmolLM2-135M" and emb.embedded_names[0] == "embedded:smollm2-135m"
    one = launch.fit_check({"model": "embedded:smollm2-135m", "hardware_profile": "cpu"})
    for name in (*emb.embedded_names, " Embedded:SmolLM2-135M"):
        assert M.is_embedded(name) and M.get_model(name) is emb
        assert tokens.family_of(name) == "smollm2" and profile.model_context(name) == emb.max_positions
        assert launch.fit_check({"model": name, "hardware_profile": "cpu"})["per_gpu_gb"] == one["per_gpu_gb"]
    # the checkpoint's hub id names the same architecture, but loads the hub's weights, not the shipped GGUF
    assert M.get_model(emb.embedded_hf_id) is emb and not M.is_embedded(emb.embedded_hf_id)
    assert not M.is_embedded("SmolLM2-360M") and not M.is_embedded("")
