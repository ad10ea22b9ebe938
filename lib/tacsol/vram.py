"""Per-GPU training-memory estimator, fit check, "plan that makes it fit" search, GPU-hours; `tacsol vram`.

``estimate(model, plan, hardware) -> Estimate`` returns separate byte terms per GPU:

  weights        quantizable Linear weights at their precision + embeddings/lm_head/norms (16-bit, or fp32 after
                 peft's prepare_model_for_kbit_training) + bitsandbytes dequantization workspace
  lora           adapter parameters r·(d_in+d_out) per adapted Linear, at the adapter dtype
  gradients      one gradient per trainable parameter (adapter dtype, or the weight dtype for full fine-tuning)
  optimizer      AdamW moments (torch: 2× param dtype; bitsandbytes 32-bit: 8 B; 8-bit: 2 B) + fp32 master copy
  activations    checkpointed layer inputs + the working set of one layer + logits/loss (see :func:`activation_terms`)

and shards them across GPUs for DDP / ZeRO-2 / ZeRO-3 / FSDP, with optional CPU offload. Their sum is ``allocated``
(torch.cuda.max_memory_allocated). On top (:func:`overhead_terms`): the caching allocator's segment rounding, one
stranded segment of the step's largest transient and DeepSpeed's buckets give ``reserved``
(torch.cuda.max_memory_reserved); the CUDA context and NCCL's buffers give ``device`` (what nvidia-smi shows).
Verdicts (:meth:`Estimate.fits`, :func:`make_fit`, the launch fit check) use ``device`` within (1 − margin) of the
card. Every constant names its source. Calibration against published measurements: :func:`calibration_table` (data in
``lib/tacsol/data/vram/calibration.json``); the comparison and its misses are documented in docs/vram.md.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from . import hardware as hwmod
from . import models as mm
from .params import ParamsError, param_error

GB = 1e9
GIB = 2**30
DATA_DIR = Path(__file__).resolve().parent / "data" / "vram"

# ---------------------------------------------------------------------------------------------------------------
# Constants (each with its source)
# ---------------------------------------------------------------------------------------------------------------
# NF4 storage: 4-bit codes + one fp32 absmax per block of 64 (0.5 bit/param); double quantization stores the absmax
# in 8 bits plus one fp32 constant per 256 absmax values: 8/64 + 32/(64·256) = 0.127 bit/param.
# Source: Dettmers et al. 2023 (QLoRA), Sec. 3 "Double Quantization".
NF4_BLOCK = 64
NF4_BITS_SINGLE = 4 + 32 / NF4_BLOCK  # 4.5
NF4_BITS_DOUBLE = 4 + 8 / NF4_BLOCK + 32 / (NF4_BLOCK * 256)  # 4.127
# LLM.int8: int8 weights + one fp32 scale per output row (bitsandbytes Int8Params.SCB); rows are negligible.
INT8_BITS = 8
# GPTQ 4-bit (AutoGPTQ, group size 128): 4-bit codes + fp16 scale and packed 4-bit zero per group of 128.
# Source: Frantar et al. 2023 (GPTQ); AutoGPTQ QuantLinear buffers qweight/qzeros/scales.
GPTQ_BITS = 4 + 16 / 128 + 4 / 128
WEIGHT_BITS = {"fp32": 32, "bf16": 16, "fp16": 16, "int8": INT8_BITS, "nf4": None, "fp4": None, "gptq4": GPTQ_BITS}
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
# Loss: transformers' ForCausalLMLoss upcasts logits to fp32 (logits.float()) and F.cross_entropy saves the fp32
# log-softmax, so the forward peak per logit element is 16-bit logits + fp32 copy + fp32 log-softmax.
# Source: transformers/loss/loss_utils.py (ForCausalLMLoss, fixed_cross_entropy).
LOSS_FP32_COPIES = 2
# Backward of that loss: log_softmax's backward holds its saved fp32 output, the incoming fp32 gradient and the
# outgoing fp32 gradient at once (3 × 4 bytes per logit element, the 16-bit logits already freed), which exceeds
# the forward's 2 + 4 + 4. Measured on an H200 (tools/gpu_evidence.py, data/vram/gpu_measurements.json): with the
# forward-only 10 bytes the estimator was 9-15% under torch.cuda.max_memory_allocated on reduced-depth
# Llama-3.2-3B / Qwen2.5-Coder-32B steps, where the b·s·V term dominates; with 12 bytes it is within 2%.
LOSS_BACKWARD_FP32_COPIES = 3
# HF RMSNorm/LayerNorm compute in fp32: saves the fp32 input and the fp32 normalised value (4+4 bytes per element)
# plus the output in the compute dtype. Source: transformers LlamaRMSNorm.forward (hidden_states.to(torch.float32)).
NORM_FP32_BYTES = 8
# Eager attention keeps the fp32 softmax output (softmax(..., dtype=torch.float32)) and its cast to the compute dtype
# for the P·V matmul: 4 + 2 bytes per score element (transformers eager_attention_forward). SDPA's memory-efficient
# kernel and FlashAttention-2 keep only the output and a fp32 log-sum-exp per (token, head): no s² term.
EAGER_SCORE_BYTES = 6
LSE_BYTES = 4
# ---- reserved memory and the nvidia-smi view (issue 17). torch's caching allocator holds more than the live tensors
# (torch.cuda.max_memory_reserved >= max_memory_allocated) and the process holds more than the allocator (nvidia-smi).
# Segment rounding: requests >= 10 MiB get a cudaMalloc segment rounded up to 2 MiB, 1-10 MiB requests carve 20 MiB
# segments, < 1 MiB ones pack into 2 MiB segments at 512 B (c10/cuda/CUDACachingAllocator.cpp kRoundLarge,
# kLargeBuffer, kSmallBuffer, kMinBlockSize). Expected unused tail: half a 2 MiB granule per long-lived large tensor
# (assumption: tensor sizes uniform modulo 2 MiB).
ALLOC_ROUND_LARGE = 2 * 2**20
ALLOC_ROUND_WASTE = ALLOC_ROUND_LARGE / 2
# Fragmentation: blocks in different cudaMalloc segments never merge, and before raising OOM the allocator releases
# only cached segments that are not split (CUDACachingAllocator.cpp header; PyTorch devlog "When does fragmentation
# occur in the CUDA caching allocator?", 2026-06-01). The step's largest transient (the fp32 b·s·V loss buffer at long
# sequences) is freed and re-requested every step; with batches whose length varies between steps (tacsol.train plans
# length-bucketed micro-batches) a longer step cannot reuse the shorter step's segments while a live block (a
# checkpointed layer input, an optimizer state) pins them. We plan for one such stranded segment: a bound, not a fit.
# A single fixed-shape step strands less: 1,159 MiB (1.22 GB) beside a 4.98 GB loss buffer (0.24×) in the RTX 8000
# 8,192-token sweep (docs/vram.md).
FRAG_TRANSIENT_SEGMENTS = 1.0
# torchtune CEWithChunkedOutputLoss splits the logits into 8 chunks (num_output_chunks default): its largest transient
# is one fp32 chunk.
LOSS_CHUNKS = 8
# CUDA context (driver state, lazily loaded kernel images, cuBLAS handles, the per-SM local-memory reservation for
# thread stacks), outside torch's allocator, per device. It grows with the SM count × resident threads (RTX 8000:
# 72 SMs × 1,024 threads; A100: 108 × 2,048; H100/H200: 132 × 2,048). Assumption: 0.35 GiB on sm_7x, 0.45 GiB on
# sm_8x, 0.5 GiB on sm_9x and newer; bounded on the RTX 8000 by the smallest nvidia-smi − max_memory_allocated gap of
# the 4-GPU sweep (734 MiB, which also holds NCCL and the allocator's gap). Overridable per plan (cuda_context_gib).
CUDA_CONTEXT_GIB_BY_MAJOR = {7: 0.35, 8: 0.45, 9: 0.5}
CUDA_CONTEXT_GIB = 0.5  # newer or unknown architectures
# NCCL communicator buffers, cudaMalloc'd by NCCL outside torch's allocator on every rank of a multi-GPU job:
# NCCL_BUFFSIZE 4 MiB (NCCL default) × 2 ring peers × ~8 channels × ~2 protocols (Simple, LL128) ≈ 0.25 GiB.
# Assumption (channel count depends on the topology); within the 734 MiB RTX 8000 gap above with the context.
NCCL_BUFFERS_GIB = 0.25
# DeepSpeed ZeRO communication buckets (inside torch's allocator). HF Trainer "auto": reduce_bucket_size = hidden²;
# the kit's zero2 JSON sets allgather_bucket_size 2e8. With overlap_comm the footprint is 4.5 × (allgather + reduce
# bucket) elements × 2 bytes (HF Transformers DeepSpeed docs, ZeRO-2 "overlap_comm"; the same buffers serve ZeRO-3's
# reduce). A bucket never holds more elements than there are trainable parameters.
DS_OVERLAP_COMM_FACTOR = 4.5
DS_ALLGATHER_BUCKET = 2e8
DS_COMM_BYTES = 2
# Verdict: reserved + CUDA context + NCCL must stay under (1 − margin) of the card. The margin absorbs the allocated
# estimate's own error (within 2% of measure_peak, ~7% under the training module on an H200; docs/vram.md).
DEFAULT_MARGIN = 0.05
# DeepSpeed ZeRO-3 keeps gathered the current and the prefetched layer: memory ≈ 2 × largest layer at its storage
# precision (DeepSpeed estimate_zero3_model_states_mem_needs uses 4 bytes × largest layer for fp16 params + grads).
ZERO3_LIVE_LAYERS = 2
# Mixed-precision full fine-tuning under DeepSpeed/FSDP: fp32 master + fp32 Adam m, v = 12 bytes per parameter
# (Rajbhandari et al. 2020, ZeRO, "K = 12").
MASTER_AND_ADAM_BYTES = 12
# Throughput model: FLOPs per token ≈ 2N forward + 2N input-gradient backward (+2N weight gradients for full
# fine-tuning) + 2N forward recompute with checkpointing (Kaplan et al. 2020: 6N for training; Chen et al. 2016
# for recompute). MFU (model FLOPs utilisation) is an assumption: 0.30 for HF Trainer + PEFT on one GPU,
# overridable. Cross-check against the torchtune README throughputs in docs/vram.md.
DEFAULT_MFU = 0.30
# bitsandbytes 4-bit matmul dequantizes at roughly half the 16-bit tensor rate in training (QLoRA paper Sec. 4:
# QLoRA is slower than 16-bit LoRA; Unsloth/bnb benchmarks ~0.5–0.7×). Assumption, overridable.
QLORA_SPEED_FACTOR = 0.6

METHODS = ("qlora", "lora", "full")
OPTIMIZERS = {
    # name: (bytes per trainable parameter for the states or None = 2 × param dtype, paged)
    "adamw": (None, False),  # torch.optim.AdamW: exp_avg, exp_avg_sq like the parameter
    "adamw_32bit": (8, False),  # bitsandbytes AdamW32bit: fp32 states
    "paged_adamw_32bit": (8, True),  # QLoRA paper optimizer: fp32 states in paged (unified) memory
    "adamw_8bit": (2, False),  # bitsandbytes blockwise 8-bit states (Dettmers et al. 2022)
    "paged_adamw_8bit": (2, True),
    "sgd": (0, False),
}
SHARDINGS = ("none", "ddp", "zero2", "zero3", "fsdp")
OFFLOADS = ("none", "optimizer", "optimizer+params")
ATTENTION = ("eager", "sdpa", "flash_attention_2")


class VramError(ParamsError):
    """Bad estimator input; the message names the field."""


@dataclass(frozen=True)
class Plan:
    method: str = "qlora"  # qlora | lora | full
    weights: str | None = None  # fp32|bf16|fp16|int8|nf4|fp4|gptq4; None: nf4 for qlora, else the compute dtype
    double_quant: bool = True
    lora_rank: int = 16
    lora_targets: tuple[str, ...] | str = mm.SEVEN_PROJECTIONS
    lora_dropout: float = 0.05
    adapter_dtype: str = "fp32"  # peft >= 0.12 autocasts adapters to fp32 (autocast_adapter_dtype=True)
    chunked_loss: bool = False  # torchtune CEWithChunkedOutputLoss: upcasts chunk by chunk (no full fp32 copy)
    # Share of the micro-batch's positions projected onto the vocabulary. tacsol.train keeps only the positions
    # before a target token (train.target_positions), so for its runs this is the largest target share of a
    # micro-batch; 1.0 (every position, the model's own loss, as the GPU calibration measured) is the upper bound.
    target_share: float = 1.0
    kbit_fp32_upcast: bool = False  # peft.prepare_model_for_kbit_training casts 16-bit params (embeddings...) to fp32
    optimizer: str = "adamw"
    seq_len: int = 4096
    micro_batch: int = 1
    gradient_checkpointing: bool = True
    attn_implementation: str | None = None  # None: from the hardware profile
    dtype: str | None = None  # compute dtype; None: from the hardware profile
    n_gpus: int = 1
    sharding: str = "none"
    offload: str = "none"
    rope_scaling_factor: float | None = None  # e.g. 4.0 for Qwen2.5 YaRN beyond 32K
    master_weights: bool | None = None  # None: True for full fine-tuning under zero2/zero3/fsdp
    cuda_context_gib: float | None = None  # None: by architecture (CUDA_CONTEXT_GIB_BY_MAJOR)
    fragmentation_segments: float = FRAG_TRANSIENT_SEGMENTS  # stranded segments of the largest transient

    def describe(self) -> str:
        w = self.weights or ("nf4" if self.method == "qlora" else "16-bit")
        parts = [f"{self.method} {w}" + (f" r={self.lora_rank}" if self.method != "full" else ""),
                 f"seq {self.seq_len}", f"mb {self.micro_batch}", "ckpt" if self.gradient_checkpointing else "no-ckpt",
                 self.optimizer]
        if self.n_gpus > 1 or self.sharding not in ("none",):
            parts.append(f"{self.sharding}×{self.n_gpus}")
        if self.offload != "none":
            parts.append(f"offload {self.offload}")
        if self.target_share < 1:
            parts.append(f"logits at {self.target_share:.0%} of positions")
        return ", ".join(parts)


# overhead keys: inside torch's caching allocator (part of memory_reserved) vs outside it (CUDA context, NCCL)
ALLOCATOR_KEYS = ("allocator_rounding", "fragmentation", "comm_buckets")
PROCESS_KEYS = ("cuda_context", "nccl_buffers")


@dataclass
class Estimate:
    """Per-GPU bytes at the step's peak. Three views: ``allocated`` (live tensors, torch.cuda.max_memory_allocated),
    ``reserved`` (+ the caching allocator's rounding, one stranded segment of the largest transient and DeepSpeed
    buckets, torch.cuda.max_memory_reserved) and ``device`` (+ CUDA context and NCCL buffers: what nvidia-smi shows).
    Verdicts (:meth:`fits`) use the device view with a margin."""
    model: str
    hardware: str
    plan: dict[str, Any]
    terms: dict[str, float]  # bytes per GPU, live tensors (allocator-visible)
    overhead: dict[str, float]  # bytes per GPU: ALLOCATOR_KEYS (inside memory_reserved) + PROCESS_KEYS (outside)
    detail: dict[str, Any]
    capacity_bytes: float
    notes: list[str] = field(default_factory=list)

    @property
    def allocated_bytes(self) -> float:
        return float(sum(self.terms.values()))

    @property
    def reserved_bytes(self) -> float:
        """torch.cuda.max_memory_reserved the step needs: live tensors + what the allocator cannot hand back."""
        return self.allocated_bytes + sum(self.overhead.get(k, 0.0) for k in ALLOCATOR_KEYS)

    @property
    def device_bytes(self) -> float:
        """What nvidia-smi shows per GPU at the peak: reserved + CUDA context + NCCL buffers."""
        return self.reserved_bytes + sum(self.overhead.get(k, 0.0) for k in PROCESS_KEYS)

    @property
    def total_bytes(self) -> float:  # the device view; kept as the name the phases and CLI already use
        return self.device_bytes

    @property
    def total_gb(self) -> float:
        return self.total_bytes / GB

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    def limit_bytes(self, margin: float = DEFAULT_MARGIN) -> float:
        return self.capacity_bytes * (1 - margin)

    def fits(self, margin: float = DEFAULT_MARGIN) -> bool:
        """Reserved + CUDA context + NCCL (the device view) within (1 − margin) of the card."""
        return self.device_bytes <= self.limit_bytes(margin)

    def headroom_gb(self, margin: float = 0.0) -> float:
        return (self.limit_bytes(margin) - self.device_bytes) / GB

    def to_dict(self, margin: float = DEFAULT_MARGIN) -> dict[str, Any]:
        return {
            "model": self.model, "hardware": self.hardware, "plan": self.plan,
            "terms_gb": {k: round(v / GB, 4) for k, v in self.terms.items()},
            "overhead_gb": {k: round(v / GB, 4) for k, v in self.overhead.items()},
            "allocated_gb": round(self.allocated_bytes / GB, 3), "reserved_gb": round(self.reserved_bytes / GB, 3),
            "device_gb": round(self.device_bytes / GB, 3),
            "total_gb": round(self.total_gb, 3), "total_gib": round(self.total_gib, 3),
            "capacity_gb": round(self.capacity_bytes / GB, 3), "margin": margin,
            "limit_gb": round(self.limit_bytes(margin) / GB, 3), "fits": self.fits(margin),
            "headroom_gb": round(self.headroom_gb(), 3),
            "detail": self.detail, "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------------------------
def weight_bits(precision: str, double_quant: bool = True) -> float:
    if precision in ("nf4", "fp4"):
        return NF4_BITS_DOUBLE if double_quant else NF4_BITS_SINGLE
    if precision not in WEIGHT_BITS:
        raise VramError(f"plan field 'weights' must be one of {sorted(WEIGHT_BITS)}, got {precision!r}")
    return float(WEIGHT_BITS[precision])


def _check_plan(spec: mm.ModelSpec, plan: Plan, hw: hwmod.Hardware) -> None:
    def bad(field_name: str, msg: str):
        raise VramError(f"{spec.name}: plan field {field_name!r} {msg}")

    if plan.method not in METHODS:
        bad("method", f"must be one of {METHODS}, got {plan.method!r}")
    if plan.optimizer not in OPTIMIZERS:
        bad("optimizer", f"must be one of {sorted(OPTIMIZERS)}, got {plan.optimizer!r}")
    if plan.sharding not in SHARDINGS:
        bad("sharding", f"must be one of {SHARDINGS}, got {plan.sharding!r}")
    if plan.offload not in OFFLOADS:
        bad("offload", f"must be one of {OFFLOADS}, got {plan.offload!r}")
    if plan.attn_implementation is not None and plan.attn_implementation not in ATTENTION:
        bad("attn_implementation", f"must be one of {ATTENTION}, got {plan.attn_implementation!r}")
    if plan.dtype is not None and plan.dtype not in DTYPE_BYTES:
        bad("dtype", f"must be one of {sorted(DTYPE_BYTES)}, got {plan.dtype!r}")
    if plan.adapter_dtype not in DTYPE_BYTES:
        bad("adapter_dtype", f"must be one of {sorted(DTYPE_BYTES)}, got {plan.adapter_dtype!r}")
    for name in ("seq_len", "micro_batch", "n_gpus"):
        v = getattr(plan, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            bad(name, f"must be a positive integer, got {v!r}")
    if not isinstance(plan.target_share, (int, float)) or isinstance(plan.target_share, bool) \
            or not 0 < plan.target_share <= 1:
        bad("target_share", f"must be in (0, 1], got {plan.target_share!r}")
    if plan.method != "full":
        if not isinstance(plan.lora_rank, int) or plan.lora_rank < 1:
            bad("lora_rank", f"must be a positive integer, got {plan.lora_rank!r}")
        h = spec.cfg("hidden_size")
        if plan.lora_rank > h:
            bad("lora_rank", f"({plan.lora_rank}) exceeds hidden_size {h}: a rank above the layer width adds nothing")
    if plan.sharding in ("none",) and plan.n_gpus > 1:
        bad("sharding", f"is 'none' but n_gpus={plan.n_gpus}; use ddp, zero2, zero3 or fsdp")
    if plan.offload != "none" and plan.sharding not in ("zero2", "zero3", "fsdp"):
        bad("offload", f"{plan.offload!r} needs sharding zero2/zero3/fsdp, got {plan.sharding!r}")
    if plan.offload == "optimizer+params" and plan.sharding == "zero2":
        bad("offload", "'optimizer+params' needs zero3 or fsdp (ZeRO-2 cannot offload parameters)")
    w = plan.weights or ("nf4" if plan.method == "qlora" else None)
    if w is not None:
        weight_bits(w, plan.double_quant)
    if plan.method == "qlora" and w in ("nf4", "fp4") and not hw.nf4:
        bad("weights", f"NF4 needs bitsandbytes support, which hardware {hw.name!r} lacks (field 'nf4')")
    if plan.method == "full" and w in ("nf4", "fp4", "int8", "gptq4"):
        bad("weights", f"full fine-tuning cannot update {w} weights; use qlora")
    # architecture divisibility
    a, kv, hsz = spec.cfg("num_attention_heads"), spec.kv_heads, spec.cfg("hidden_size")
    if kv <= 0 or a % kv:
        raise VramError(f"{spec.name}: config field 'num_key_value_heads' ({kv}) must divide "
                        f"'num_attention_heads' ({a})")
    if not spec.cfg("head_dim") and not spec.cfg("qk_nope_head_dim") and hsz % a:
        raise VramError(f"{spec.name}: config field 'num_attention_heads' ({a}) must divide 'hidden_size' ({hsz})")
    if plan.sharding in ("zero3", "fsdp") and plan.n_gpus < 1:
        bad("n_gpus", "must be >= 1")
    # sequence length vs positions
    maxp = spec.max_positions
    if maxp and plan.seq_len > maxp:
        factor = plan.rope_scaling_factor
        if not factor:
            raise VramError(f"{spec.name}: plan field 'seq_len' ({plan.seq_len}) exceeds the model's "
                            f"'max_position_embeddings' ({maxp}) and no rope scaling is set "
                            f"(set plan field 'rope_scaling_factor', e.g. YaRN factor {math.ceil(plan.seq_len / maxp)})")
        if plan.seq_len > maxp * factor:
            raise VramError(f"{spec.name}: plan field 'seq_len' ({plan.seq_len}) exceeds max_position_embeddings × "
                            f"rope_scaling_factor ({maxp} × {factor})")


def _choices(plan: Plan, hw: hwmod.Hardware) -> tuple[str, str]:
    """Compute dtype and attention: the plan's when set, else the hardware's (tacsol.hardware checks both)."""
    try:
        ch = hwmod.choices(hw, dtype=plan.dtype, attn_implementation=plan.attn_implementation)
    except hwmod.HardwareError as exc:
        raise VramError(f"plan field {exc}") from exc
    return ch.dtype, ch.attn_implementation


def activation_terms(spec: mm.ModelSpec, plan: Plan, dtype: str, attn: str, lora_targets: list[str] | None) -> dict[str, float]:
    """Activation bytes per GPU for one micro-batch (the peak during the step).

    Per layer and token, elements saved for backward (HF Llama/Qwen2-style decoder; Korthikanti et al. 2022 derive
    34·h bytes for a GPT layer, this itemises it for SwiGLU/GQA/MoE and HF's fp32 norms):
      2 norms × (fp32 input + fp32 normalised + output); attention inputs q (a·d), k and v (kv·d for FlashAttention-2,
      a·d after repeat_kv for SDPA/eager); attention output + fp32 log-sum-exp; MLP: SwiGLU 4·I (gate, act, up, product)
      or GELU 2·I; MoE uses the routed + shared experts a token visits; PEFT keeps each adapted module's input cast to
      the adapter dtype and dropped out (+1-byte mask); eager attention adds 6 bytes × a·s per token (fp32 softmax + cast).
    With gradient checkpointing only each layer's input (h elements) is kept; one layer is recomputed at a time.
    Logits/loss: b·s·V × max(forward: 16-bit logits + fp32 upcast + fp32 log-softmax, backward: 3 fp32 buffers of
    log_softmax's backward), see LOSS_FP32_COPIES and LOSS_BACKWARD_FP32_COPIES.
    """
    e = DTYPE_BYTES[dtype]
    s, b = plan.seq_len, plan.micro_batch
    h = spec.cfg("hidden_size")
    L = spec.cfg("num_hidden_layers")
    a = spec.cfg("num_attention_heads")
    kv = spec.kv_heads
    V = spec.cfg("vocab_size")
    if spec.cfg("qk_nope_head_dim"):  # MLA (DeepSeek): q/k head dim = nope + rope, v head dim separate
        dqk = spec.cfg("qk_nope_head_dim") + spec.cfg("qk_rope_head_dim")
        dv = spec.cfg("v_head_dim")
    else:
        dqk = dv = spec.head_dim
    if spec.is_moe:
        moe_i = spec.cfg("moe_intermediate_size")
        inter = moe_i * (spec.cfg("num_experts_per_tok") + (spec.cfg("n_shared_experts") or 0))
    else:
        inter = spec.cfg("intermediate_size")
    gelu_mlp = spec.model_type in ("starcoder2", "gpt2", "gpt_bigcode")
    mlp_elems = (2 if gelu_mlp else 4) * inter
    kv_elems = (kv if attn == "flash_attention_2" else a) * (dqk + dv)
    attn_elems = a * dqk + kv_elems + a * dv  # q, k, v, attention output (= o_proj input)
    per_token = 2 * h * (NORM_FP32_BYTES + e) + e * (attn_elems + mlp_elems) + LSE_BYTES * a
    if plan.method != "full" and lora_targets:
        # PEFT casts each adapted module's input to the adapter dtype and applies dropout: lora_A saves that copy
        # (+ a 1-byte dropout mask). With a 16-bit adapter and no dropout, lora_A saves x itself (no extra bytes).
        # Verified on CPU against saved-tensor bytes (tests/test_vram.py::test_activation_terms_match_saved_tensors).
        pa = DTYPE_BYTES[plan.adapter_dtype]
        if plan.lora_dropout > 0 or pa != e:
            per_layer_in = mm.lora_input_features(spec, lora_targets) / L
            per_token += (pa + (1 if plan.lora_dropout > 0 else 0)) * per_layer_in
    eager = EAGER_SCORE_BYTES * a * s if attn == "eager" else 0
    layer_full = (per_token + eager) * s * b
    fp32_copies = LOSS_FP32_COPIES - (1 if plan.chunked_loss else 0)
    forward_loss = e + 4 * fp32_copies if e < 4 else 4 * fp32_copies
    # a chunked loss runs its backward chunk by chunk too: only the forward term counts there
    backward_loss = 0 if plan.chunked_loss else 4 * LOSS_BACKWARD_FP32_COPIES
    logits = b * s * plan.target_share * V * max(forward_loss, backward_loss)
    mask = 2 * s * s * b if attn == "eager" else 0  # 4-D additive causal mask (16-bit), shared by all layers
    if plan.gradient_checkpointing:
        stored = L * h * e * s * b
        working = max(logits, layer_full)
    else:
        stored = L * layer_full
        working = logits
    return {"layer_inputs_or_stored": float(stored), "working_set": float(working), "attention_mask": float(mask),
            "per_layer_full": float(layer_full), "logits_loss": float(logits)}


def largest_transient(spec: mm.ModelSpec, plan: Plan, dtype: str, attn: str, quantized: bool) -> tuple[float, str]:
    """Bytes and name of the largest single tensor a step allocates and frees again: the candidate for a stranded
    allocator segment. Candidates: the fp32 b·s·V loss buffer (one chunk of it with a chunked loss), the 16-bit
    logits, eager attention's fp32 softmax (a·s²·b), one MLP intermediate (b·s·I), one dequantized 16-bit weight."""
    e = DTYPE_BYTES[dtype]
    s, b = plan.seq_len, plan.micro_batch
    bsv = b * s * plan.target_share * spec.cfg("vocab_size")
    chunks = LOSS_CHUNKS if plan.chunked_loss else 1
    inter = (spec.cfg("moe_intermediate_size") if spec.is_moe else spec.cfg("intermediate_size")) or 0
    f = mm.facts(spec)
    cands = {"fp32 loss buffer (b·s·V)" + (f" / {chunks} chunks" if chunks > 1 else ""): 4 * bsv / chunks,
             "16-bit logits (b·s·V)": e * bsv / chunks,
             "MLP intermediate (b·s·I)": e * b * s * inter}
    if attn == "eager":
        cands["eager fp32 attention scores (a·s²·b)"] = 4 * spec.cfg("num_attention_heads") * s * s * b
    if quantized:
        cands["dequantized 16-bit weight"] = 2 * max(v["max_weight"] for v in f["linear"].values())
    name = max(cands, key=cands.get)
    return float(cands[name]), name


def _large_tensor_count(spec: mm.ModelSpec, plan: Plan) -> float:
    """Long-lived tensors of >= 1 MiB on one GPU (each leaves part of a 2 MiB granule unused): frozen or trained
    weight matrices (+ embeddings, lm_head), their gradients and two Adam states for full fine-tuning, and the L
    checkpointed layer inputs. ZeRO-3/FSDP keep flat shards: the per-matrix count divides by N."""
    f = mm.facts(spec)
    weights = sum(v["count"] for v in f["linear"].values()) + 2
    if plan.method == "full":
        weights *= 4 if plan.offload == "none" else 2
    if plan.sharding in ("zero3", "fsdp") and plan.n_gpus > 1:
        weights /= plan.n_gpus
    return weights + (spec.cfg("num_hidden_layers") if plan.gradient_checkpointing else 0)


def _comm_buckets(spec: mm.ModelSpec, plan: Plan, trainable: float) -> float:
    """DeepSpeed ZeRO-2/3 gradient reduce (+ ZeRO-2 all-gather) buckets with overlap_comm, inside torch's allocator.
    DDP's buckets are already an allocated term (ddp_buckets); FSDP reduces in place of its unsharded layer."""
    if plan.sharding not in ("zero2", "zero3") or plan.n_gpus < 2:
        return 0.0
    reduce = min(spec.cfg("hidden_size") ** 2, trainable)  # HF "auto": hidden², capped by what there is to reduce
    gather = min(DS_ALLGATHER_BUCKET, trainable) if plan.sharding == "zero2" else 0.0
    return DS_OVERLAP_COMM_FACTOR * (reduce + gather) * DS_COMM_BYTES


def cuda_context_bytes(plan: Plan, hw: hwmod.Hardware) -> float:
    if hw.kind != "cuda":
        return 0.0
    if plan.cuda_context_gib is not None:
        return plan.cuda_context_gib * GIB
    major = int(str(hw.compute_capability).split(".")[0])
    return CUDA_CONTEXT_GIB_BY_MAJOR.get(major, CUDA_CONTEXT_GIB) * GIB


def overhead_terms(spec: mm.ModelSpec, plan: Plan, hw: hwmod.Hardware, dtype: str, attn: str, quantized: bool,
                   trainable: float) -> tuple[dict[str, float], dict[str, Any]]:
    """The gap between allocated and what nvidia-smi shows, per GPU. Inside the caching allocator: segment rounding,
    ``plan.fragmentation_segments`` stranded segments of the largest transient, DeepSpeed buckets. Outside it: the
    CUDA context and, on multi-GPU jobs, NCCL's buffers. CPU profiles have none of these."""
    if hw.kind != "cuda":
        return {k: 0.0 for k in (*ALLOCATOR_KEYS, *PROCESS_KEYS)}, {"largest_transient": None}
    big, what = largest_transient(spec, plan, dtype, attn, quantized)
    overhead = {
        "allocator_rounding": ALLOC_ROUND_WASTE * _large_tensor_count(spec, plan),
        "fragmentation": plan.fragmentation_segments * big,
        "comm_buckets": _comm_buckets(spec, plan, trainable),
        "cuda_context": cuda_context_bytes(plan, hw),
        "nccl_buffers": NCCL_BUFFERS_GIB * GIB if plan.n_gpus > 1 else 0.0,
    }
    return overhead, {"largest_transient": {"what": what, "gb": round(big / GB, 3)}}


def estimate(model: str | Path | mm.ModelSpec, plan: Plan | dict | None = None,
             hardware: str | hwmod.Hardware | dict = "rtx8000") -> Estimate:
    """Per-GPU memory of one training step. Errors (unknown model, bad plan field, missing hardware field) name the field."""
    spec = mm.resolve(model)
    if plan is None:
        plan = Plan()
    elif isinstance(plan, dict):
        unknown = set(plan) - set(Plan.__dataclass_fields__)
        if unknown:
            raise VramError(f"unknown plan field(s) {sorted(unknown)}; known: {sorted(Plan.__dataclass_fields__)}")
        plan = Plan(**{k: (tuple(v) if k == "lora_targets" and isinstance(v, list) else v) for k, v in plan.items()})
    hw = hwmod.load_profile(hardware)
    _check_plan(spec, plan, hw)
    dtype, attn = _choices(plan, hw)
    e = DTYPE_BYTES[dtype]
    f = mm.facts(spec)
    N = plan.n_gpus
    notes: list[str] = []

    # ---- weights
    wprec = plan.weights or ("nf4" if plan.method == "qlora" else dtype)
    quantized = wprec in ("nf4", "fp4", "int8", "gptq4")
    Q = f["quantizable_params"]
    other = f["total_params"] - Q  # embeddings, lm_head, norms, biases, routers
    bits = weight_bits(wprec, plan.double_quant)
    if quantized:
        # bnb leaves them in the load dtype (16-bit on GPUs); peft's prepare_model_for_kbit_training upcasts to fp32
        other_bytes = other * (4 if plan.kbit_fp32_upcast else e)
        w_quant = Q * bits / 8
        workspace = 2 * max(v["max_weight"] for v in f["linear"].values())  # one dequantized 16-bit Linear at a time
    else:
        other_bytes = other * bits / 8
        w_quant = Q * bits / 8
        workspace = 0.0
    weights_total = w_quant + other_bytes

    # ---- trainable parameters
    if plan.method == "full":
        targets = None
        trainable = f["total_params"]
        p_bytes = bits / 8
        lora_bytes = 0.0
    else:
        targets = mm.resolve_targets(spec, plan.lora_targets)
        trainable = mm.lora_params(spec, plan.lora_rank, targets)
        p_bytes = DTYPE_BYTES[plan.adapter_dtype]
        lora_bytes = trainable * p_bytes
    grads = trainable * p_bytes
    per_state, paged = OPTIMIZERS[plan.optimizer]
    opt_states = trainable * (2 * p_bytes if per_state is None else per_state)
    master = plan.master_weights
    if master is None:
        master = plan.method == "full" and plan.sharding in ("zero2", "zero3", "fsdp") and p_bytes < 4
    if master and plan.method == "full":
        opt_states = trainable * MASTER_AND_ADAM_BYTES if per_state is None else opt_states + trainable * 4
        notes.append("fp32 master weights + fp32 Adam moments (ZeRO K=12)")
    if paged:
        notes.append("paged optimizer: states live in CUDA unified memory and can spill to host under pressure")

    # ---- sharding
    ddp_buckets = 0.0
    gathered = 0.0
    if plan.sharding == "ddp" and N > 1:
        ddp_buckets = grads  # DDP gradient buckets duplicate the gradients (gradient_as_bucket_view=False default)
    if plan.sharding in ("zero2", "zero3", "fsdp"):
        grads /= N
        opt_states /= N
        if plan.sharding in ("zero3", "fsdp"):
            largest = f["largest_layer_params"]
            gathered = ZERO3_LIVE_LAYERS * largest * bits / 8
            weights_total /= N
            lora_bytes /= N
            if quantized:
                notes.append("ZeRO-3/FSDP shard 4-bit weights only with bnb_4bit_quant_storage = the model dtype "
                             "(and zero3_init_flag) — PEFT accelerate/deepspeed docs")
    if plan.offload in ("optimizer", "optimizer+params"):
        opt_states = 0.0
        notes.append("optimizer states (and fp32 master) offloaded to CPU RAM")
    if plan.offload == "optimizer+params":
        weights_total = 0.0
        lora_bytes = 0.0
        grads = 0.0 if plan.method == "full" else grads
        notes.append("parameters offloaded to CPU RAM; only the gathered layers stay on the GPU")

    act = activation_terms(spec, plan, dtype, attn, targets)
    activations = act["layer_inputs_or_stored"] + act["working_set"] + act["attention_mask"]

    terms = {
        "weights": weights_total,
        "quant_workspace": workspace,
        "zero3_gathered": gathered,
        "lora": lora_bytes,
        "gradients": grads,
        "ddp_buckets": ddp_buckets,
        "optimizer": opt_states,
        "activations": activations,
    }
    overhead, gap = overhead_terms(spec, plan, hw, dtype, attn, quantized, trainable)
    detail = {
        "dtype": dtype, "attn_implementation": attn, "weight_precision": wprec, "weight_bits": round(bits, 4),
        "total_params": f["total_params"], "quantizable_params": Q, "other_params": other,
        "trainable_params": int(trainable), "lora_targets": targets, "activation_parts_gb":
            {k: round(v / GB, 4) for k, v in act.items()}, "plan_text": plan.describe(), **gap,
    }
    return Estimate(model=spec.name, hardware=hw.name, plan=_plan_dict(plan), terms=terms, overhead=overhead,
                    detail=detail, capacity_bytes=float(hw.memory_bytes), notes=notes)


def _plan_dict(plan: Plan) -> dict[str, Any]:
    d = asdict(plan)
    if isinstance(d["lora_targets"], tuple):
        d["lora_targets"] = list(d["lora_targets"])
    return d


def fits(model, plan: Plan | dict | None = None, hardware="rtx8000", margin: float = DEFAULT_MARGIN) -> bool:
    return estimate(model, plan, hardware).fits(margin)


# Ordered levers for make_fit: each keeps the task (sequence length) and changes only how it is trained.
FIT_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("gradient checkpointing", {"gradient_checkpointing": True}),
    ("micro-batch 1 (+gradient accumulation)", {"micro_batch": 1}),
    ("8-bit paged AdamW", {"optimizer": "paged_adamw_8bit"}),
    ("4-bit NF4 base (QLoRA)", {"method": "qlora", "weights": "nf4", "double_quant": True}),
    ("ZeRO-3 across the GPUs", {"sharding": "zero3"}),
    ("CPU offload of optimizer states", {"offload": "optimizer"}),
    ("CPU offload of parameters", {"offload": "optimizer+params"}),
]


def make_fit(model, plan: Plan, hardware="rtx8000", n_gpus: int | None = None, margin: float = DEFAULT_MARGIN
             ) -> tuple[Plan | None, list[str], Estimate]:
    """Apply FIT_STEPS in order until the estimate fits. Returns (plan or None, changes made, last estimate).

    n_gpus: GPUs available for sharding (default: plan.n_gpus). Full fine-tuning switches to QLoRA only as a
    listed change; the sequence length is never shortened (that changes the task)."""
    n = n_gpus or plan.n_gpus
    cur = plan
    changes: list[str] = []
    est = estimate(model, cur, hardware)
    if est.fits(margin):
        return cur, changes, est
    for label, delta in FIT_STEPS:
        if label.startswith("ZeRO-3"):
            if n < 2:
                continue
            delta = {"sharding": "zero3", "n_gpus": n}
        if label.startswith("CPU offload") and cur.sharding not in ("zero3", "fsdp"):
            continue
        if all(getattr(cur, k) == v for k, v in delta.items()):
            continue
        if label.startswith("4-bit") and cur.method == "qlora" and (cur.weights or "nf4") in ("nf4", "fp4"):
            continue  # already 4-bit
        if label.startswith("4-bit") and cur.method == "full":
            delta = {**delta, "lora_rank": cur.lora_rank or 16}
        cur = replace(cur, **delta)
        changes.append(label)
        est = estimate(model, cur, hardware)
        if est.fits(margin):
            return cur, changes, est
    return None, changes, est


def max_seq_len(model, plan: Plan, hardware="rtx8000", margin: float = DEFAULT_MARGIN, upper: int | None = None) -> int:
    """Longest sequence (multiple of 256) that fits; 0 if even 256 does not. Capped at the model's positions."""
    spec = mm.resolve(model)
    hi = upper or spec.max_positions * int(plan.rope_scaling_factor or 1)
    if not estimate(spec, replace(plan, seq_len=256), hardware).fits(margin):
        return 0
    lo_ok, hi_bad = 256, hi + 256
    if estimate(spec, replace(plan, seq_len=hi), hardware).fits(margin):
        return hi
    while hi_bad - lo_ok > 256:
        mid = (lo_ok + hi_bad) // 2 // 256 * 256
        if mid <= lo_ok:
            mid = lo_ok + 256
        if estimate(spec, replace(plan, seq_len=mid), hardware).fits(margin):
            lo_ok = mid
        else:
            hi_bad = mid
    return lo_ok


# ---------------------------------------------------------------------------------------------------------------
# GPU-hours
# ---------------------------------------------------------------------------------------------------------------
def flops_per_token(model, plan: Plan) -> float:
    n = mm.active_params(model)
    passes = 2 + 2 + (2 if plan.method == "full" else 0) + (2 if plan.gradient_checkpointing else 0)
    return passes * n


def throughput(model, plan: Plan, hardware="rtx8000", mfu: float = DEFAULT_MFU) -> float:
    """Tokens/s per GPU = MFU × peak 16-bit FLOP/s ÷ FLOPs per token (× QLORA_SPEED_FACTOR for 4-bit)."""
    hw = hwmod.load_profile(hardware)
    tps = mfu * hw.peak_tflops_16bit * 1e12 / flops_per_token(model, plan)
    if plan.method == "qlora":
        tps *= QLORA_SPEED_FACTOR
    return tps


def gpu_hours(tokens: float, epochs: float, tokens_per_s: float, n_gpus: int = 1) -> dict[str, float]:
    """GPU-hours = tokens × epochs ÷ throughput (per GPU); wall-clock hours assume linear data-parallel scaling."""
    if tokens_per_s <= 0:
        raise VramError(f"field 'tokens_per_s' must be positive, got {tokens_per_s}")
    gpu_h = tokens * epochs / tokens_per_s / 3600
    return {"gpu_hours": gpu_h, "wall_hours": gpu_h / max(1, n_gpus), "tokens": tokens * epochs,
            "tokens_per_s_per_gpu": tokens_per_s}


# ---------------------------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------------------------
UNITS = {"GB": GB, "GiB": GIB, "MiB": 2**20}
# What each compare key reads off the estimate, and the instrument it stands for.
COMPARE = {
    "allocated": ("allocated_bytes", "torch.cuda.max_memory_allocated"),
    "reserved": ("reserved_bytes", "torch.cuda.max_memory_reserved"),
    "device": ("device_bytes", "nvidia-smi (reserved + CUDA context + NCCL)"),
    "weights": (None, "component: weights"), "lora": (None, "component: LoRA adapters"),
    "optimizer": (None, "component: optimizer states"),
}


def load_calibration(path: str | Path | None = None) -> list[dict[str, Any]]:
    p = Path(path) if path else DATA_DIR / "calibration.json"
    rows = json.loads(p.read_text(encoding="utf-8"))["measurements"]
    for i, r in enumerate(rows):
        for key in ("id", "source", "model", "hardware", "plan", "measured", "unit", "compare"):
            if key not in r:
                raise VramError(f"{p.name}: measurement #{i} ({r.get('id', '?')}) lacks field {key!r}")
        if r["compare"] not in COMPARE:
            raise VramError(f"{p.name}: {r['id']}: field 'compare' must be one of {sorted(COMPARE)}, got {r['compare']!r}")
        if r["unit"] not in UNITS:
            raise VramError(f"{p.name}: {r['id']}: field 'unit' must be one of {sorted(UNITS)}, got {r['unit']!r}")
        if r["measured"] is None and not (r.get("oom") or r.get("ran")):
            raise VramError(f"{p.name}: {r['id']}: field 'measured' is null but the row is neither 'oom' nor 'ran'")
    return rows


def _component(est: Estimate, compare: str) -> float:
    attr, _ = COMPARE.get(compare, (None, None))
    if attr:
        return getattr(est, attr)
    if compare in ("weights", "lora", "optimizer"):
        return est.terms[compare]
    raise VramError(f"calibration field 'compare' must be one of {sorted(COMPARE)}, got {compare!r}")


def _calibration_row(r: dict[str, Any], margin: float) -> dict[str, Any]:
    est = estimate(r["model"], r["plan"], r["hardware"])
    got = _component(est, r["compare"])
    verdict = "oom" if r.get("oom") else ("ran" if r.get("ran") else None)
    if verdict:  # a verdict row holds when the kit's fit check agrees with what the hardware did
        err, measured = None, None
        ok = est.fits(margin) == (verdict == "ran")
    else:
        measured = r["measured"] * UNITS[r["unit"]]
        err = (got - measured) / measured
        ok = abs(err) <= 0.15
    cause = r.get("cause", "")
    return {
        "id": r["id"], "source": r["source"], "model": r["model"], "hardware": r["hardware"],
        "setting": r.get("setting", est.detail["plan_text"]), "compare": r["compare"],
        "measured_as": r.get("measured_as", ""), "estimate_quantity": COMPARE[r["compare"]][1],
        "measured_gb": None if measured is None else round(measured / GB, 2),
        "estimate_gb": round(got / GB, 2), "allocated_gb": round(est.allocated_bytes / GB, 2),
        "reserved_gb": round(est.reserved_bytes / GB, 2), "device_gb": round(est.device_bytes / GB, 2),
        "limit_gb": round(est.limit_bytes(margin) / GB, 2), "kit_verdict": "fits" if est.fits(margin) else "does not fit",
        "rel_error": None if err is None else round(err, 4), "within_15pct": ok,
        "explained": (not ok) and bool(cause), "cause": cause if not ok else "",
        "oom": verdict == "oom", "ran": verdict == "ran", "note": r.get("note", ""),
    }


def calibration_table(path: str | Path | None = None, extra_rows: Iterable[dict[str, Any]] = (),
                      margin: float = DEFAULT_MARGIN) -> list[dict[str, Any]]:
    """Estimate vs every published measurement (one output row per input row, none dropped), each compared with the
    quantity its source measured. A row outside ±15% (or a verdict the kit gets wrong) carries its named ``cause``."""
    return [_calibration_row(r, margin) for r in [*load_calibration(path), *extra_rows]]


def calibration_summary(table: list[dict[str, Any]]) -> dict[str, Any]:
    # verdict rows carry no relative error (None, or NaN after a pandas round trip)
    errs = sorted(abs(r["rel_error"]) for r in table if r["rel_error"] is not None and r["rel_error"] == r["rel_error"])
    med = errs[len(errs) // 2] if len(errs) % 2 else (errs[len(errs) // 2 - 1] + errs[len(errs) // 2]) / 2
    within = sum(bool(r["within_15pct"]) for r in table)
    explained = sum(r.get("explained") is True for r in table)
    verdicts = [r for r in table if r.get("oom") is True or r.get("ran") is True]
    return {"rows": len(table), "within_15pct": within, "share_within_15pct": round(within / len(table), 4),
            "explained_misses": explained, "unexplained_misses": len(table) - within - explained,
            "verdict_rows": len(verdicts), "verdicts_right": sum(bool(r["within_15pct"]) for r in verdicts),
            "median_abs_rel_error": round(med, 4), "max_abs_rel_error": round(max(errs), 4)}


# ---------------------------------------------------------------------------------------------------------------
# GPU measurement (GPU machines only)
# ---------------------------------------------------------------------------------------------------------------
def measure_peak(model, plan: Plan, num_layers: int = 2, device: str = "cuda", steps: int = 1) -> dict[str, Any]:
    """Real memory of a training step of a random-initialised, reduced-depth registry architecture.

    Builds ``num_layers`` layers (same widths, vocab, heads) on ``device``, quantizes the Linears to NF4 with
    bitsandbytes for QLoRA, applies LoRA (PEFT) or trains fully, and runs ``steps`` AdamW steps at
    plan.seq_len × plan.micro_batch. On CUDA it returns torch.cuda.max_memory_allocated of the steps beside the
    estimator's allocated bytes for the same reduced model, and max_memory_reserved and the device's used memory
    (mem_get_info, the nvidia-smi view) beside the reserved and device estimates (issue 17; not yet run on a GPU). On
    CPU (no allocator statistics) it returns the exact tensor bytes of parameters + gradients + optimizer states
    beside the estimator's model-state terms, which exercises the same path without a GPU."""
    import torch
    import torch.nn as nn
    from transformers import AutoModelForCausalLM

    spec = mm.resolve(model)
    extra = {"first_k_dense_replace": min(1, num_layers)} if spec.cfg("first_k_dense_replace") else {}
    small = spec.with_config(num_hidden_layers=num_layers, **extra)
    dname = plan.dtype or ("bf16" if device != "cpu" else "fp32")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dname]
    attn = plan.attn_implementation or "sdpa"
    cfg = mm.hf_config(small)
    cfg._attn_implementation = attn
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
    # Initialise on the GPU: random init of a 2-layer 70B-wide model (3.8B parameters) took 40-100 s on the CPU of
    # the measuring machine, most of each measurement. Only the steps are measured (peak stats reset below).
    with torch.device(device if cuda else "cpu"):
        net = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    if plan.method == "qlora":
        import bitsandbytes as bnb

        def quantize(mod):
            for name, child in mod.named_children():
                if isinstance(child, nn.Linear) and name != "lm_head":
                    q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                          compute_dtype=dtype, compress_statistics=plan.double_quant, quant_type="nf4")
                    w = bnb.nn.Params4bit(child.weight.data.float().cpu(), requires_grad=False,
                                          compress_statistics=plan.double_quant, quant_type="nf4", blocksize=NF4_BLOCK)
                    q.weight = w.to(device) if cuda else w._quantize("cpu")
                    if child.bias is not None:
                        q.bias = child.bias
                    setattr(mod, name, q)
                else:
                    quantize(child)
        quantize(net)
    net = net.to(device)
    if plan.method != "full":
        from peft import LoraConfig, get_peft_model

        targets = mm.resolve_targets(small, plan.lora_targets)
        net = get_peft_model(net, LoraConfig(r=plan.lora_rank, lora_alpha=2 * plan.lora_rank, target_modules=targets,
                                             lora_dropout=plan.lora_dropout))
    if plan.gradient_checkpointing:
        net.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        net.enable_input_require_grads()
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    ids = torch.randint(0, spec.cfg("vocab_size"), (plan.micro_batch, plan.seq_len), device=device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(steps):
        loss = net(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        if cuda:
            opt.zero_grad(set_to_none=True)
    hw = hwmod.profile_for_device(torch.cuda.get_device_name(0) if cuda else None)
    est = estimate(small, replace(plan, dtype=dname, attn_implementation=attn), hw)

    def nbytes(ts):
        return sum(t.numel() * t.element_size() for t in ts)

    if cuda:
        measured = torch.cuda.max_memory_allocated() - base
        want = est.allocated_bytes
        what = "peak allocated (torch.cuda.max_memory_allocated)"
        dev_name = torch.cuda.get_device_name(0)
        free, total = torch.cuda.mem_get_info()  # before empty_cache: the cached segments still count, as in nvidia-smi
        views = {"measured_reserved_gb": torch.cuda.max_memory_reserved() / GB, "estimate_reserved_gb": est.reserved_bytes / GB,
                 "device_used_gb": (total - free) / GB, "estimate_device_gb": est.device_bytes / GB}
    else:
        quant_state = 0
        for m in net.modules():
            qs = getattr(getattr(m, "weight", None), "quant_state", None)
            if qs is not None:
                quant_state += nbytes([qs.absmax]) + (nbytes([qs.state2.absmax]) if getattr(qs, "state2", None) is not None else 0)
        measured = (nbytes(net.parameters()) + quant_state + nbytes(p.grad for p in trainable if p.grad is not None)
                    + nbytes(v for st in opt.state.values() for k, v in st.items() if k != "step"))
        want = sum(est.terms[k] for k in ("weights", "lora", "gradients", "optimizer"))
        what = "exact tensor bytes of parameters + quantization state + gradients + optimizer states"
        dev_name = "cpu"
        views = {}
    del net, opt
    if cuda:
        torch.cuda.empty_cache()
    return {"model": spec.name, "num_layers": num_layers, "plan": plan.describe(), "what": what,
            "measured_peak_gb": measured / GB, "estimate_allocated_gb": want / GB,
            "rel_error": (want - measured) / measured, "device": dev_name, **views}


def check_params(values: dict[str, Any], where: str) -> None:
    """Notebook 02's parameters (tacsol.params.PLAN_CHECKS): the hardware profile and every listed model exist."""
    try:
        hwmod.load_profile(values["hardware"])
    except hwmod.HardwareError as exc:
        raise param_error(where, "hardware", str(exc)) from None
    for key in ("heatmap_models", "maxlen_models", "gpu_hours_models"):
        for name in values.get(key, []):
            try:
                mm.resolve(name)
            except mm.ModelError as exc:
                raise param_error(where, key, str(exc)) from None


# ---------------------------------------------------------------------------------------------------------------
# CLI: tacsol vram
# ---------------------------------------------------------------------------------------------------------------
def build_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("model", nargs="?", help="registry name, hub id of a registry entry, or a config.json path")
    p.add_argument("--hardware", default="rtx8000", help=f"profile name or JSON file ({', '.join(hwmod.list_profiles())})")
    p.add_argument("--method", default="qlora", choices=METHODS)
    p.add_argument("--weights", default=None, help="fp32|bf16|fp16|int8|nf4|fp4|gptq4 (default: nf4 for qlora)")
    p.add_argument("--no-double-quant", action="store_true")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--targets", default=",".join(mm.SEVEN_PROJECTIONS), help="comma-separated modules or all-linear")
    p.add_argument("--optimizer", default="adamw", choices=sorted(OPTIMIZERS))
    p.add_argument("--seq-len", type=int, default=4096)
    p.add_argument("--micro-batch", type=int, default=1)
    p.add_argument("--no-checkpointing", action="store_true")
    p.add_argument("--target-share", type=float, default=1.0,
                   help="share of positions whose logits are computed: tacsol.train keeps only those before a "
                        "target token, so the largest target share of a micro-batch (1.0: every position, an "
                        "upper bound)")
    p.add_argument("--attn", default=None, choices=ATTENTION)
    p.add_argument("--dtype", default=None, choices=sorted(DTYPE_BYTES))
    p.add_argument("--gpus", type=int, default=1)
    p.add_argument("--sharding", default=None, choices=SHARDINGS, help="default: none for 1 GPU, ddp for more")
    p.add_argument("--offload", default="none", choices=OFFLOADS)
    p.add_argument("--rope-scaling-factor", type=float, default=None)
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help="keep this share of the card free beyond the device estimate (reserved + context + NCCL)")
    p.add_argument("--make-fit", action="store_true", help="search the plan changes that make it fit")
    p.add_argument("--list", action="store_true", help="list registry models and hardware profiles")
    p.add_argument("--calibration", action="store_true", help="print the calibration table")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _plan_from_args(args) -> Plan:
    targets = args.targets if args.targets == "all-linear" else tuple(t for t in args.targets.split(",") if t)
    return Plan(method=args.method, weights=args.weights, double_quant=not args.no_double_quant, lora_rank=args.rank,
                lora_targets=targets, optimizer=args.optimizer, seq_len=args.seq_len, micro_batch=args.micro_batch,
                gradient_checkpointing=not args.no_checkpointing, attn_implementation=args.attn, dtype=args.dtype,
                n_gpus=args.gpus, sharding=args.sharding or ("ddp" if args.gpus > 1 else "none"), offload=args.offload,
                rope_scaling_factor=args.rope_scaling_factor, target_share=args.target_share)


def _print_calibration(table: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    for r in table:
        err = ("OOM" if r["oom"] else "ran") if r["rel_error"] is None else f"{r['rel_error']:+.1%}"
        print(f"{r['id']:42s} {r['compare']:9s} measured {r['measured_gb']!s:>7} GB  estimate {r['estimate_gb']:>7} GB  "
              f"{err:>7}  {'ok' if r['within_15pct'] else 'MISS (cause named)' if r['explained'] else 'MISS'}")
    print(summary)


def _print_estimate(est: Estimate, doc: dict[str, Any], margin: float, gpus: int) -> None:
    print(f"{est.model} on {est.hardware} ({est.detail['dtype']}, {est.detail['attn_implementation']}): {est.detail['plan_text']}")
    for k, v in est.terms.items():
        if v:
            print(f"  {k:18s} {v / GB:8.2f} GB")
    print(f"  {'= allocated':18s} {est.allocated_bytes / GB:8.2f} GB  (torch.cuda.max_memory_allocated)")
    for k in ALLOCATOR_KEYS:
        print(f"  {k:18s} {est.overhead[k] / GB:8.2f} GB")
    print(f"  {'= reserved':18s} {est.reserved_bytes / GB:8.2f} GB  (torch.cuda.max_memory_reserved)")
    for k in PROCESS_KEYS:
        print(f"  {k:18s} {est.overhead[k] / GB:8.2f} GB")
    lt = est.detail.get("largest_transient") or {}
    print(f"  {'= device':18s} {est.device_bytes / GB:8.2f} GB  (nvidia-smi) of {est.capacity_bytes / GB:.1f} GB, limit "
          f"{est.limit_bytes(margin) / GB:.1f} GB (margin {margin:.0%}) -> {'fits' if doc['fits'] else 'does NOT fit'}"
          + (f"; largest transient: {lt['what']} {lt['gb']:.2f} GB" if lt else ""))
    if "make_fit" in doc:
        mf = doc["make_fit"]
        print("  make it fit: " + (((" + ".join(mf["changes"]) or "already fits as stated") + f" -> {mf['total_gb']:.1f} GB") if mf["fits"]
                                   else "no plan found (" + " + ".join(mf["changes"]) + ")"
                                   + ("; more GPUs allow ZeRO-3 sharding: --gpus N" if gpus < 2 else "")))
    for n in est.notes:
        print("  note:", n)


def main(args) -> int:
    if args.list:
        doc = {"models": {n: mm.get_model(n).hf_id for n in mm.list_models()}, "hardware": hwmod.list_profiles()}
        print(json.dumps(doc, indent=1) if args.json else
              "models:   " + ", ".join(doc["models"]) + "\nhardware: " + ", ".join(doc["hardware"]))
        return 0
    if args.calibration:
        table = calibration_table(margin=args.margin)
        doc = {"rows": table, "summary": calibration_summary(table)}
        print(json.dumps(doc, indent=1)) if args.json else _print_calibration(table, doc["summary"])
        return 0
    if not args.model:
        raise VramError("give a model (registry name or config.json path), or --list")
    plan = _plan_from_args(args)
    est = estimate(args.model, plan, args.hardware)
    doc = est.to_dict(args.margin)
    if args.make_fit or not doc["fits"]:
        fit_plan, changes, fit_est = make_fit(args.model, plan, args.hardware, n_gpus=max(args.gpus, 1), margin=args.margin)
        doc["make_fit"] = {"fits": fit_plan is not None, "changes": changes,
                           "plan": _plan_dict(fit_plan) if fit_plan else None, "total_gb": round(fit_est.total_gb, 3),
                           "reserved_gb": round(fit_est.reserved_bytes / GB, 3)}
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        _print_estimate(est, doc, args.margin, args.gpus)
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Documented 4× RTX 8000 plans under the verdict before and after issue 17
# ---------------------------------------------------------------------------------------------------------------
# The verdict before issue 17, kept only to show which plans change: allocated × 1.05 (a flat "allocator reserve") +
# 0.5 GiB CUDA context on a CUDA device, against the same (1 − margin) limit.
LEGACY_RESERVE, LEGACY_CONTEXT_GIB = 0.05, 0.5


def legacy_device_bytes(est: Estimate) -> float:
    return est.allocated_bytes * (1 + LEGACY_RESERVE) + (LEGACY_CONTEXT_GIB * GIB if est.overhead["cuda_context"] else 0.0)


def views_gb(est: Estimate, margin: float = DEFAULT_MARGIN) -> dict[str, Any]:
    """The three per-GPU views of one estimate, the limit, and the verdict now and under the rule before issue 17."""
    return {"allocated_gb": round(est.allocated_bytes / GB, 2), "reserved_gb": round(est.reserved_bytes / GB, 2),
            "device_gb": round(est.device_bytes / GB, 2), "limit_gb": round(est.limit_bytes(margin) / GB, 2),
            "fits": est.fits(margin), "fits_before": legacy_device_bytes(est) <= est.limit_bytes(margin),
            "before_gb": round(legacy_device_bytes(est) / GB, 2)}


# Plans docs/vram.md documents for 4× RTX 8000 besides the recommendations' rows and the params files: notebook 02's
# base plan (QLoRA r=16, one card, no fp32 upcast) and the measured Qwen2.5-Coder-7B run (its calibration plan).
_RUN_7B = {"seq_len": 8192, "kbit_fp32_upcast": True, "lora_dropout": 0.1, "n_gpus": 4, "sharding": "ddp"}
DOCUMENTED_PLANS: list[tuple[str, str, dict[str, Any]]] = [
    ("02 base: Qwen2.5-Coder-32B 4,096 × 1, one card", "Qwen2.5-Coder-32B", {"seq_len": 4096, "micro_batch": 1}),
    ("02 base: Qwen2.5-Coder-32B 4,096 × 2, one card", "Qwen2.5-Coder-32B", {"seq_len": 4096, "micro_batch": 2}),
    ("02 base: Qwen2.5-Coder-32B 4,096 × 4, one card", "Qwen2.5-Coder-32B", {"seq_len": 4096, "micro_batch": 4}),
    ("02 base: Qwen2.5-Coder-32B 8,192 × 1, one card", "Qwen2.5-Coder-32B", {"seq_len": 8192, "micro_batch": 1}),
    ("02 base: Llama-3.1-70B 4,096 × 1, one card", "Llama-3.1-70B", {"seq_len": 4096}),
    ("02 base: Llama-3.1-70B 4,096 × 1, ZeRO-3 × 4", "Llama-3.1-70B", {"seq_len": 4096, "sharding": "zero3", "n_gpus": 4}),
    ("measured run: Qwen2.5-Coder-7B 8,192 × 1, DDP × 4 (ran)", "Qwen2.5-Coder-7B", {**_RUN_7B, "micro_batch": 1}),
    ("measured run: Qwen2.5-Coder-7B 8,192 × 2, DDP × 4 (OOM)", "Qwen2.5-Coder-7B", {**_RUN_7B, "micro_batch": 2}),
]


def _plan_row(label: str, kind: str, est: Estimate, margin: float, **extra) -> dict[str, Any]:
    v = views_gb(est, margin)
    change = ("fits → does NOT fit" if v["fits_before"] and not v["fits"] else
              "does not fit → fits" if v["fits"] and not v["fits_before"] else "unchanged")
    lt = est.detail.get("largest_transient") or {}
    return {"plan": label, "kind": kind, "setting": est.detail["plan_text"], **v,
            "largest_transient": f"{lt.get('what', '')} {lt.get('gb', 0):.2f} GB" if lt else "", "change": change, **extra}


def rtx8000_plans_table(hardware="rtx8000", gpus: int = 4, margin: float = DEFAULT_MARGIN,
                        params_glob: str = "params/0[45]_*.yaml") -> list[dict[str, Any]]:
    """Every documented 4× RTX 8000 plan under the verdict before and after issue 17: the phase params files (the fit
    check ``tacsol.launch`` runs before a launch), the plans docs/vram.md discusses, and the recommendations' rows as
    they stand. ``change`` says which plans move from "fits" to "does not fit"."""
    from . import claims, launch, paths

    rows = []
    for f in sorted(paths.resolve(".").glob(params_glob)):
        fit = launch.fit_check_file(f.relative_to(paths.resolve(".")))
        if fit.get("fits") is None or fit.get("hardware_profile") != hardware:
            continue
        est = estimate(fit["model"], fit["plan"], hardware)
        rows.append(_plan_row(f.name, "params file (launch fit check)", est, margin))
    for label, model, delta in DOCUMENTED_PLANS:
        plan = Plan(method="qlora", **{"n_gpus": 1, **delta})
        rows.append(_plan_row(label, "docs/vram.md plan", estimate(model, plan, hardware), margin))
    for row in claims.recommendation_rows():
        spec = mm.get_model(row["model"])
        plan = Plan(seq_len=min(4096, spec.max_positions), **row["plan"])
        rows.append(_plan_row(row["config"], "recommendations row", estimate(spec, plan, hardware), margin))
    return rows


def phase_gpu_hours(model, plan: Plan, hardware="rtx8000", *, train_tokens: float, epochs: float,
                    eval_tokens: float = 0.0, gen_tokens: float = 0.0, mfu: float = DEFAULT_MFU,
                    tokens_per_s: float | None = None, decode_batch: int = 16, decode_efficiency: float = 0.5,
                    n_gpus: int = 1) -> list[dict[str, Any]]:
    """GPU-hours per phase. Training: tokens × epochs ÷ throughput (MFU model or the given tokens_per_s).
    Validation loss pass: forward only (2N FLOPs/token). Generation: decode is memory-bound: per step every weight
    byte is read once, so tokens/s ≈ decode_batch × decode_efficiency × bandwidth ÷ weight bytes (assumption)."""
    hw = hwmod.load_profile(hardware)
    train_tps = tokens_per_s or throughput(model, plan, hw, mfu)
    fwd_tps = mfu * hw.peak_tflops_16bit * 1e12 / (2 * mm.active_params(model)) * (QLORA_SPEED_FACTOR if plan.method == "qlora" else 1)
    wbytes = estimate(model, replace(plan, seq_len=min(plan.seq_len, 256)), hw).terms["weights"] * max(1, plan.n_gpus)
    dec_tps = decode_batch * decode_efficiency * hw.memory_bandwidth_gbs * 1e9 / wbytes
    rows = []
    for phase, tokens, ep, tps, basis in (
            ("train (SFT)", train_tokens, epochs, train_tps, "given tokens/s" if tokens_per_s else f"MFU {mfu:.0%}"),
            ("validation loss", eval_tokens, 1, fwd_tps, f"forward only, MFU {mfu:.0%}"),
            ("test generation", gen_tokens, 1, dec_tps, f"decode batch {decode_batch}, {decode_efficiency:.0%} of bandwidth")):
        if tokens <= 0:
            continue
        g = gpu_hours(tokens, ep, tps, n_gpus)
        rows.append({"phase": phase, "tokens": tokens * ep, "tokens_per_s_per_gpu": round(tps, 1),
                     "gpu_hours": round(g["gpu_hours"], 2), "wall_hours": round(g["wall_hours"], 2), "basis": basis})
    return rows


def gpu_measurement_table(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The estimator beside tacsol's own GPU measurements (data/vram/gpu_measurements.json): reduced-depth models of
    the registry architectures, measured with torch.cuda.max_memory_allocated (tools/gpu_evidence.py).
    rel_error = (estimate − measured) / measured, on allocator-visible bytes."""
    path = Path(path) if path else DATA_DIR / "gpu_measurements.json"
    doc = json.loads(Path(path).read_text())
    hw = hwmod.profile_for_device(doc["environment"]["gpu"])
    out = []
    for r in doc["measurements"]:
        spec = mm.resolve(r["model"]).with_config(num_hidden_layers=r["num_layers"])
        est = estimate(spec, r["plan"], hw)
        gb = est.allocated_bytes / GB
        out.append({"kind": r["kind"], "model": r["model"], "layers": r["num_layers"],
                    "plan": Plan(**r["plan"]).describe() + f", {r['plan'].get('dtype', '')}",
                    "measured_gb": r["measured_gb"], "estimate_gb": round(gb, 3),
                    "rel_error": round((gb - r["measured_gb"]) / r["measured_gb"], 4),
                    "estimate_before_gb": r.get("estimate_then_gb"), "tokens_per_s": r.get("tokens_per_s")})
    return out


# ---------------------------------------------------------------------------------------------------------------
# Notebook 02's tables over many models and plans
# ---------------------------------------------------------------------------------------------------------------
def memory_grid(models: Iterable[str], seq_lens: Iterable[int], micro_batches: Iterable[int], base: Plan,
                hardware="rtx8000", margin: float = DEFAULT_MARGIN) -> list[dict[str, Any]]:
    """Per-GPU memory (device view) of ``base`` over sequence length × micro-batch for each model; lengths beyond a
    model's positions are left out."""
    rows = []
    for name in models:
        spec = mm.get_model(name)
        for mb in micro_batches:
            for s in seq_lens:
                if s > spec.max_positions:
                    continue
                e = estimate(spec, replace(base, seq_len=s, micro_batch=mb), hardware)
                rows.append({"model": name, "seq_len": s, "micro_batch": mb, "total_gb": round(e.total_gb, 2),
                             "fits": e.fits(margin)})
    return rows


def longest_sequence_table(models: Iterable[str], base: Plan, hardware="rtx8000",
                           margin: float = DEFAULT_MARGIN) -> list[dict[str, Any]]:
    """The longest training sequence of ``base`` at micro-batch 1 that fits one card, and what limits it."""
    rows = []
    for name in models:
        spec = mm.get_model(name)
        longest = max_seq_len(spec, replace(base, micro_batch=1), hardware, margin=margin)
        limit = "positions" if longest >= spec.max_positions else ("memory" if longest else "weights alone")
        rows.append({"model": name, "params_B": round(mm.param_count(spec) / 1e9, 2),
                     "max_positions": spec.max_positions, "longest_seq_that_fits": longest, "limited_by": limit})
    return rows


def gpu_hours_table(models: Iterable[str], base: Plan, hardware="rtx8000", *, n_gpus: int,
                    margin: float = DEFAULT_MARGIN, **phase_kw) -> list[dict[str, Any]]:
    """:func:`phase_gpu_hours` per model, on the plan :func:`make_fit` finds from ``base`` for ``n_gpus`` cards
    (models with no fitting plan are left out); ``phase_kw`` go to phase_gpu_hours."""
    rows = []
    for name in models:
        spec = mm.get_model(name)
        plan, _, _ = make_fit(spec, base, hardware, n_gpus=n_gpus, margin=margin)
        if plan is not None:
            rows += [{"model": name, "plan": plan.describe(), **row}
                     for row in phase_gpu_hours(spec, plan, hardware, n_gpus=n_gpus, **phase_kw)]
    return rows


# Reduced-depth plans that notebook 02 measures on a GPU (measure_gpu) beside the published calibration rows.
MEASURED_PLANS = (("Llama-3.1-8B", Plan(method="lora", weights="bf16", dtype="bf16", seq_len=2048)),
                  ("Llama-3.1-8B", Plan(method="qlora", dtype="bf16", seq_len=2048)),
                  ("Qwen2.5-Coder-7B", Plan(method="qlora", dtype="bf16", seq_len=4096, gradient_checkpointing=False)))


def measured_calibration_rows() -> list[dict[str, Any]]:
    """:data:`MEASURED_PLANS` measured here (:func:`measure_peak`, 2 layers) as calibration rows; none without a
    CUDA device."""
    import torch

    if not torch.cuda.is_available():
        return []
    rows = []
    for name, plan in MEASURED_PLANS:
        r = measure_peak(name, plan, num_layers=2)
        rows.append({"id": f"gpu-{name}-{plan.method}-{plan.seq_len}", "source": f"measured here ({r['device']})",
                     "model": f"{name} (2 layers)", "compare": "allocated",
                     "measured_gb": round(r["measured_peak_gb"], 2), "measured_as": "torch.cuda.max_memory_allocated",
                     "estimate_gb": round(r["estimate_allocated_gb"], 2),
                     "rel_error": round(r["rel_error"], 4), "within_15pct": abs(r["rel_error"]) <= 0.15,
                     "explained": False, "cause": "", "oom": False, "ran": False})
    return rows
