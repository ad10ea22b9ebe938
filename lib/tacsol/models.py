"""Model registry: one JSON per model under ``lib/tacsol/data/models/`` holding config.json facts.

Parameter counts are not typed in: :func:`facts` builds the architecture with transformers on the meta device
(``with torch.device("meta")``, no weights, no hub) and counts tensors, then caches the result under
``outputs/cache/model_facts/`` keyed by the config and the transformers version. The same pass records what the
memory estimator needs: every ``nn.Linear`` shape grouped by module name (LoRA target modules), embedding and lm_head
sizes, tied or not, fused MoE expert tensors, the largest layer.

Users add a model by hub id (:func:`from_hub`, path for connected machines) or by a config.json file
(:func:`from_config_file`); both give the same :class:`ModelSpec` as a registry entry.

The embedded model (the one the kit ships, loaded by :mod:`tacsol.loading` without the hub) is the registry entry
with an ``embedded`` field: its accepted names (``embedded:smollm2-135m`` first) and the checkpoint it is. Every
module asks :func:`is_embedded` / :func:`get_model` rather than keeping its own list of spellings.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import paths
from .ioutil import atomic_write_json
from .params import ParamsError

DATA_DIR = Path(__file__).resolve().parent / "data" / "models"

# The seven projections the paper and the recommendations adapt ("r=16 on all seven projections").
SEVEN_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# config.json keys the estimator reads; a user config lacking them cannot be estimated.
REQUIRED_CONFIG = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


class ModelError(ParamsError):
    """Unknown model, or a config that transformers cannot build / the estimator cannot use."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hf_id: str
    model_type: str
    config: dict[str, Any]
    published_params: float | None = None
    published_params_source: str = ""
    published_active_params: float | None = None
    role: str = "candidate"  # "candidate" (recommendations) | "calibration" (published measurements) | "user"
    notes: str = ""
    source: str = ""  # file it came from
    # Layout stand-ins: modules that the original checkpoint fuses into one Linear (e.g. Qwen-1 c_attn = q,k,v);
    # LoRA on a fused module has one A matrix (r·d_in) for the group instead of one per member.
    fused_modules: dict[str, list[str]] = field(default_factory=dict)
    # The embedded model only: its accepted names (lower case, the canonical one first) and the checkpoint it is.
    embedded_names: tuple[str, ...] = ()
    embedded_hf_id: str = ""

    def cfg(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def with_config(self, **changes: Any) -> "ModelSpec":
        """A copy with config fields changed (e.g. fewer layers for a reduced-depth measurement)."""
        from dataclasses import replace

        return replace(self, name=f"{self.name}[{','.join(f'{k}={v}' for k, v in changes.items())}]",
                       config={**self.config, **changes}, published_params=None)

    @property
    def max_positions(self) -> int:
        return int(self.cfg("max_position_embeddings") or 0)

    @property
    def head_dim(self) -> int:
        return int(self.cfg("head_dim") or self.cfg("hidden_size") // self.cfg("num_attention_heads"))

    @property
    def kv_heads(self) -> int:
        return int(self.cfg("num_key_value_heads") or self.cfg("num_attention_heads"))

    @property
    def is_moe(self) -> bool:
        return bool(self.cfg("n_routed_experts") or self.cfg("num_local_experts") or self.cfg("num_experts"))


def _spec_from_dict(d: dict[str, Any], where: str) -> ModelSpec:
    for key in ("name", "model_type", "config"):
        if key not in d:
            raise ModelError(f"{where}: model entry lacks field {key!r}")
    cfg = d["config"]
    for key in REQUIRED_CONFIG:
        if key not in cfg:
            raise ModelError(f"{where}: config lacks field {key!r}")
    emb = d.get("embedded") or {}
    return ModelSpec(name=d["name"], hf_id=d.get("hf_id", d["name"]), model_type=d["model_type"], config=dict(cfg),
                     published_params=d.get("published_params"),
                     published_params_source=d.get("published_params_source", ""),
                     published_active_params=d.get("published_active_params"), role=d.get("role", "candidate"),
                     notes=d.get("notes", ""), source=where, fused_modules=dict(d.get("fused_modules") or {}),
                     embedded_names=tuple(n.lower() for n in emb.get("names", ())), embedded_hf_id=emb.get("hf_id", ""))


@lru_cache(maxsize=1)
def _registry() -> dict[str, ModelSpec]:
    reg = {}
    for f in sorted(DATA_DIR.glob("*.json")):
        spec = _spec_from_dict(json.loads(f.read_text(encoding="utf-8")), f.name)
        reg[spec.name] = spec
    return reg


def list_models(role: str | None = None) -> list[str]:
    """Registry names; role='candidate' gives the models of the recommendations, 'calibration' the others."""
    return [n for n, s in _registry().items() if role is None or s.role == role]


def embedded() -> ModelSpec:
    """The registry entry of the embedded model; ``embedded().embedded_names[0]`` is its name in params files."""
    found = [s for s in _registry().values() if s.embedded_names]
    if len(found) != 1:
        raise ModelError(f"the registry must mark exactly one model as embedded, found {[s.name for s in found]}")
    return found[0]


def is_embedded(name: str) -> bool:
    """Whether ``name`` is one of the embedded model's names ('embedded:smollm2-135m', 'smollm2', ...)."""
    return str(name).strip().lower() in embedded().embedded_names


def get_model(name: str) -> ModelSpec:
    """Registry entry by name ('Qwen2.5-Coder-32B'), case-insensitive, by hub id ('Qwen/Qwen2.5-Coder-32B'), or by
    one of the embedded model's names or its checkpoint's hub id."""
    reg = _registry()
    if name in reg:
        return reg[name]
    low = name.strip().lower()
    for spec in reg.values():
        if low in {spec.name.lower(), spec.hf_id.lower(), spec.embedded_hf_id.lower(), *spec.embedded_names} - {""}:
            return spec
    near = difflib.get_close_matches(name, list(reg), n=2, cutoff=0.5)
    hint = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
    raise ModelError(f"unknown model {name!r}{hint}; known: {', '.join(reg)}; "
                     "or pass a config.json path / a hub id with models.from_hub")


_CONFIG_META_KEYS = {"architectures", "model_type", "transformers_version", "torch_dtype", "dtype", "_name_or_path",
                     "auto_map", "quantization_config"}


def from_config_dict(cfg: dict[str, Any], name: str | None = None, hf_id: str | None = None,
                     where: str = "config") -> ModelSpec:
    if "model_type" not in cfg:
        raise ModelError(f"{where}: config.json lacks field 'model_type'")
    from transformers import CONFIG_MAPPING

    if cfg["model_type"] not in CONFIG_MAPPING:
        raise ModelError(f"{where}: model_type {cfg['model_type']!r} is not built into this transformers version "
                         "(remote-code models need an equivalent built-in layout)")
    body = {k: v for k, v in cfg.items() if k not in _CONFIG_META_KEYS}
    nm = name or hf_id or cfg.get("_name_or_path") or Path(where).parent.name or "user-model"
    return _spec_from_dict({"name": nm, "hf_id": hf_id or nm, "model_type": cfg["model_type"], "config": body,
                            "role": "user"}, where)


def from_config_file(path: str | Path, name: str | None = None) -> ModelSpec:
    """A model from a local config.json (what a hub snapshot contains)."""
    p = paths.resolve(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model config file not found: {p}") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{p}: not valid JSON ({exc})") from exc
    return from_config_dict(cfg, name=name or p.parent.name, where=str(p))


def from_hub(hf_id: str, name: str | None = None, **kwargs: Any) -> ModelSpec:
    """A model by hub id via ``AutoConfig.from_pretrained`` (needs network or a local HF cache)."""
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(hf_id, **kwargs)
    except OSError as exc:
        raise ModelError(f"cannot fetch config for {hf_id!r} ({exc.__class__.__name__}: {str(exc)[:200]})") from exc
    return from_config_dict(cfg.to_diff_dict() | {"model_type": cfg.model_type}, name=name, hf_id=hf_id,
                            where=f"hub:{hf_id}")


def resolve(model: str | Path | ModelSpec) -> ModelSpec:
    """Registry name / hub id of a registry entry / config.json path / ModelSpec → ModelSpec."""
    if isinstance(model, ModelSpec):
        return model
    s = str(model)
    if s.endswith(".json") or Path(s).is_dir():
        return from_config_file(s)
    return get_model(s)


def hf_config(spec: ModelSpec):
    from transformers import AutoConfig

    try:
        return AutoConfig.for_model(spec.model_type, **spec.config)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"{spec.name}: transformers cannot build a {spec.model_type!r} config ({exc})") from exc


def meta_model(spec: ModelSpec):
    """The full architecture on the meta device: shapes only, no memory, no weights."""
    import torch
    from transformers import AutoModelForCausalLM

    cfg = hf_config(spec)
    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(cfg)
    except Exception as exc:  # transformers raises many kinds for inconsistent configs
        raise ModelError(f"{spec.name}: cannot build the architecture ({exc.__class__.__name__}: {exc})") from exc


def _cache_key(spec: ModelSpec) -> str:
    import transformers

    blob = json.dumps({"t": spec.model_type, "c": spec.config, "v": transformers.__version__, "f": 5}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _layer_index(name: str) -> int | None:
    m = re.search(r"\.layers\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def count_facts(model) -> dict[str, Any]:
    """Count an instantiated (meta or real) causal LM: totals, linear shapes by module name, embeddings, experts."""
    import torch.nn as nn

    total = sum(p.numel() for p in model.parameters())  # parameters() de-duplicates tied tensors
    emb = model.get_input_embeddings()
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is emb.weight
    emb_params = emb.weight.numel()
    lm_head_params = 0 if (out is None or tied) else out.weight.numel()
    linear: dict[str, dict[str, int]] = {}
    per_layer: dict[int, int] = {}
    experts: dict[str, dict[str, int]] = {}
    lm_head_ids = {id(out)} if out is not None else set()
    for mname, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and id(mod) not in lm_head_ids:
            key = mname.rsplit(".", 1)[-1]
            e = linear.setdefault(key, {"count": 0, "in_plus_out": 0, "weights": 0, "max_weight": 0, "biases": 0,
                                        "in_features": 0, "out_widths": []})
            e["count"] += 1
            e["out_widths"] = sorted({*e["out_widths"], mod.out_features})  # bitsandbytes' CPU kernel needs % 32
            e["in_plus_out"] += mod.in_features + mod.out_features
            e["in_features"] += mod.in_features
            e["weights"] += mod.in_features * mod.out_features
            e["max_weight"] = max(e["max_weight"], mod.in_features * mod.out_features)
            e["biases"] += mod.out_features if mod.bias is not None else 0
    for pname, p in model.named_parameters():
        li = _layer_index(pname)
        if li is not None:
            per_layer[li] = per_layer.get(li, 0) + p.numel()
        if p.dim() == 3:  # fused MoE experts (transformers 5): (experts, out, in)
            key = pname.rsplit(".", 1)[-1]
            e = experts.setdefault(key, {"tensors": 0, "experts": 0, "params": 0, "in_plus_out": 0})
            e["tensors"] += 1
            e["experts"] = p.shape[0]
            e["params"] += p.numel()
            e["in_plus_out"] += p.shape[0] * (p.shape[1] + p.shape[2])
    linear_weights = sum(e["weights"] for e in linear.values())
    expert_params = sum(e["params"] for e in experts.values())
    return {
        "total_params": int(total),
        "embedding_params": int(emb_params),
        "lm_head_params": int(lm_head_params),
        "tied_embeddings": bool(tied),
        "linear": linear,
        "linear_weight_params": int(linear_weights),
        "expert_params": int(expert_params),
        "experts": experts,
        # what bitsandbytes 4/8-bit would quantize: nn.Linear weights except lm_head, plus fused expert tensors
        "quantizable_params": int(linear_weights + expert_params),
        "largest_layer_params": int(max(per_layer.values()) if per_layer else 0),
        "num_layers_built": len(per_layer),
    }


def facts(model: str | Path | ModelSpec, use_cache: bool = True) -> dict[str, Any]:
    """Architecture facts of a model (meta-device count, cached). See :func:`count_facts` for the fields."""
    spec = resolve(model)
    return dict(_facts_cached(spec.name, _cache_key(spec), json.dumps(spec.config, sort_keys=True),
                              spec.model_type, use_cache))


@lru_cache(maxsize=128)
def _facts_cached(name: str, key: str, config_json: str, model_type: str, use_cache: bool) -> dict[str, Any]:
    import transformers

    cache = paths.cache_dir() / "model_facts" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{key}.json"
    if use_cache and cache.is_file():
        try:
            return json.loads(cache.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            pass  # a corrupt cache is rebuilt below
    spec = ModelSpec(name=name, hf_id=name, model_type=model_type, config=json.loads(config_json))
    model = meta_model(spec)
    f = count_facts(model)
    f["transformers_version"] = transformers.__version__
    f["method"] = "meta-device instantiation (AutoModelForCausalLM.from_config under torch.device('meta'))"
    atomic_write_json(cache, f)
    return f


def param_count(model: str | Path | ModelSpec) -> int:
    return facts(model)["total_params"]


def active_params(model: str | Path | ModelSpec) -> int:
    """Parameters used per token: MoE models use experts_per_tok of the routed experts."""
    spec = resolve(model)
    f = facts(spec)
    routed = spec.cfg("n_routed_experts") or spec.cfg("num_local_experts") or spec.cfg("num_experts")
    if not routed:
        return f["total_params"]
    k = spec.cfg("num_experts_per_tok")
    return int(f["total_params"] - f["expert_params"] * (1 - k / routed))


def lora_targets_available(model: str | Path | ModelSpec) -> list[str]:
    return sorted(facts(model)["linear"])


def lora_params(model: str | Path | ModelSpec, rank: int, targets: tuple[str, ...] | list[str] | str = SEVEN_PROJECTIONS) -> int:
    """LoRA adds r·(d_in + d_out) per adapted nn.Linear (A: r×d_in, B: d_out×r), matched by module name like PEFT.

    targets: module names, or "all-linear" (PEFT: every Linear except the output layer)."""
    f = facts(model)
    if rank <= 0:
        raise ModelError(f"LoRA rank must be positive, got {rank}")
    lin = f["linear"]
    names = list(lin) if targets == "all-linear" else list(targets)
    missing = [t for t in names if t not in lin]
    if missing:
        spec = resolve(model)
        raise ModelError(f"{spec.name}: LoRA target module(s) {missing} do not exist; "
                         f"linear modules are {sorted(lin)}")
    total = sum(lin[t]["in_plus_out"] for t in names)
    for members in resolve(model).fused_modules.values():
        if all(m in names for m in members):  # fused: the group's input dimension is counted once
            total -= (len(members) - 1) * lin[members[0]]["in_features"]
    return int(rank * total)


def registry_table(lora_rank: int = 16) -> list[dict[str, Any]]:
    """Every registry model: parameter counts from the meta device beside the published totals, and the LoRA
    parameters of the seven projections at ``lora_rank`` (notebook 02's first table)."""
    rows = []
    for name in list_models():
        spec = get_model(name)
        n = param_count(spec)
        rows.append({"model": name, "role": spec.role, "model_type": spec.model_type, "params_B": round(n / 1e9, 3),
                     "active_B": round(active_params(spec) / 1e9, 3),
                     "published_B": round(spec.published_params / 1e9, 3),
                     "rel_diff": round((n - spec.published_params) / spec.published_params, 4),
                     "max_positions": spec.max_positions,
                     f"lora_r{lora_rank}_7proj_M": round(
                         lora_params(spec, lora_rank, resolve_targets(spec, SEVEN_PROJECTIONS)) / 1e6, 1)})
    return rows


def lora_input_features(model: str | Path | ModelSpec, targets: list[str]) -> int:
    """Summed in_features of the adapted modules over the whole model (fused groups share one input)."""
    spec = resolve(model)
    lin = facts(spec)["linear"]
    total = sum(lin[t]["in_features"] for t in targets if t in lin)
    for members in spec.fused_modules.values():
        if all(m in targets for m in members):
            total -= (len(members) - 1) * lin[members[0]]["in_features"]
    return int(total)


def resolve_targets(model: str | Path | ModelSpec, targets) -> list[str]:
    """Map the seven Llama projection names onto the architecture (e.g. Phi-3's fused qkv_proj / gate_up_proj,
    StarCoder2's c_fc / c_proj, DeepSeek MLA's kv_a/kv_b) so that "the seven projections" means all attention and
    MLP projections everywhere."""
    lin = facts(model)["linear"]
    if targets == "all-linear":
        return sorted(lin)
    targets = list(targets)
    if all(t in lin for t in targets):
        return targets
    if set(targets) == set(SEVEN_PROJECTIONS):
        return sorted(lin)  # every Linear except lm_head (already excluded): the architecture's projections
    return targets  # lora_params names the missing ones
