# %% [markdown]
# # 01 · Data profiling — how long are the pairs in each model's own tokens, and what do the claims about the data hold?
#
# Reads a TAC → Solidity dataset (the shipped sample by default; `params/01_data_profiling.yaml` profiles the corpus
# built by notebook 00), renders every pair with the kit's real template (`tacsol.prompt`: prompt + target, the
# markers as added special tokens, BOS/EOS as the tokenizer adds them) and counts tokens with each candidate model's
# exact tokenizer (Llama-3 and Qwen2.5 via quicktok-v1, SmolLM2 from its GGUF; `hub_tokenizers = True` uses each
# model's own AutoTokenizer on a connected machine). It measures lengths, coverage at 2k–20k tokens, the
# recommended `max_seq_length` per model for a coverage target (written to `summary.json`, where the training
# phases read it with `tacsol.profile.max_seq_length_for`), entropy, composition, complexity buckets, duplicates and
# split leakage, checks every quantitative claim about the data, and times the token counting.
#
# Definitions of every number: `tacsol.profile` module docstring.

# %% tags=["parameters"]
# Embedded CPU default (plain literals only): the shipped sample. `-f params/01_data_profiling.yaml` profiles the corpus.
run_name = "demo"
output_dir = "outputs/demo/01_data_profiling"
smoke = True
dataset = "sample"           # "sample", a dataset name under outputs/data/ (e.g. "demo" from notebook 00), a folder or .jsonl
tokenizers = ["meta-llama/Llama-3.2-3B", "Qwen/Qwen2.5-Coder-32B", "embedded:smollm2-135m"]
hub_tokenizers = False       # True on a connected machine: each model's own AutoTokenizer (offline family fallback)
coverage_target = 0.99       # share of pairs the recommended max_seq_length must fit
thresholds = [2048, 4096, 8192, 16384, 20000]
multiple_of = 64             # recommended lengths are rounded up to this
bytecode_file = ""           # optional JSON/JSONL of runtime bytecode (hex strings or objects with "runtime") for opcode entropy
bench_pairs = 20000          # pairs (replicated from the dataset) timed for the throughput figure; 0: skip
fail_on_leak = True          # a normalized body in two splits fails the phase (after summary.json is written)
compare_datasets = []        # builds of the same corpus at another TAC level (e.g. ["corpus_l2"]): tokens side by side

# %%
import tacsol.params
params = tacsol.params.check_notebook(globals(), "01")   # refuses unknown / mistyped keys
import json
import time
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import display, Markdown
from tacsol import claims, paths, summary, tokens
from tacsol import profile as PR
from tacsol.ioutil import atomic_write_text
out = paths.resolve(output_dir); out.mkdir(parents=True, exist_ok=True)
hw = summary.hardware_line()
print("hardware:", hw)
pd.set_option("display.max_colwidth", 120)
pd.set_option("display.width", 220)

# %% [markdown]
# ## Data and tokenizers

# %%
t_start = time.perf_counter()
df = PR.load_pairs(dataset)
split_counts = df["split"].value_counts().reindex(["train", "validation", "test"]).fillna(0).astype(int).to_dict()
print(f"dataset {dataset!r}: {len(df):,} pairs {split_counts}")
counters = {m: tokens.tokenizer_for(m, hub=hub_tokenizers) for m in tokenizers}
for m, c in counters.items():
    print(f"  {m:28s} family {c.family:8s} BOS {c.bos}  source: {c.source}")
data_line = f"Data: {dataset!r}, {len(df):,} pairs. Hardware: {hw}."

# %%
contexts = {m: PR.model_context(m) for m in tokenizers}
bytecodes = PR.load_bytecodes(bytecode_file) if bytecode_file else None
t0 = time.perf_counter()
res = PR.profile(df, tokenizers, coverage_target=coverage_target, thresholds=thresholds, hub=hub_tokenizers,
                 bytecode=bytecodes, model_context=contexts, multiple_of=multiple_of)
profile_s = time.perf_counter() - t0
lengths = res["lengths"]
print(f"profiled in {profile_s:.1f} s (token counting: " +
      ", ".join(f"{m} {s:.2f} s" for m, s in res["timings"].items() if not m.startswith("_")) + ")")

# %% [markdown]
# ## TAC levels side by side
# The same corpus built at another TAC level (`tacsol data build --level 2`, docs/tac-format.md), in Llama-3 tokens:
# every pair, then the functions both builds hold. Compact TAC's goals (issue 14): median TAC ≤ 5× its Solidity,
# ≥ 99% of pairs within 4,096 tokens and ≥ 95% within 2,048.

# %%
from tacsol import pairs
level_rows = []
if compare_datasets:
    frames = {dataset: df, **{n: PR.load_pairs(n) for n in compare_datasets}}
    for n, f in frames.items():
        f.attrs["tac_level"] = pairs.tac_level(n)
    level_rows = PR.level_comparison(frames)
    display(pd.DataFrame(level_rows).round(3))
else:
    print(f"TAC level of {dataset!r}: {pairs.tac_level(dataset)}; no other build to compare (compare_datasets = [])")

# %% [markdown]
# ## Lengths in characters

# %%
peak = claims.value("recommendations.function_chars")
fig = PR.plot_char_lengths(lengths, peak, f"Characters per pair: raw TAC, raw Solidity, and the rendered training text "
                           f"(tacsol.prompt.build_prompt + build_target). Dashed: median; orange: the recommendations' "
                           f"'{peak[0]}–{peak[1]} characters' claim. {data_line}")
fig.savefig(out / "char_lengths.png", dpi=110, bbox_inches="tight"); plt.show()
display(pd.DataFrame({c: res["stats"][c] for c in ("tac_chars", "sol_chars", "full_chars")}).T.round(1))

# %% [markdown]
# ## Lengths in tokens, coverage and the recommended `max_seq_length`

# %%
src = "; ".join(f"{m} = {c.source}" for m, c in counters.items())
fig = PR.plot_token_lengths(lengths, tokenizers, res["recommended"], thresholds,
                            f"Tokens per full training sequence (BOS if any + prompt with markers as single tokens + "
                            f"target + EOS) per tokenizer; grey dashed lines: {', '.join(f'{t:,}' for t in thresholds)}; "
                            f"dotted: recommended max_seq_length at {coverage_target:.0%} coverage. Tokenizers: {src}. "
                            f"{data_line}")
fig.savefig(out / "token_lengths.png", dpi=110, bbox_inches="tight"); plt.show()

# %%
band = claims.value("recommendations.function_tokens")
fig = PR.plot_part_tokens(lengths, tokenizers, band, f"TAC tokens (the TAC between its markers, two newlines included) "
                          f"and Solidity tokens (the target) per tokenizer; orange: the recommendations' "
                          f"'{band[0]}–{band[1]} tokens' claim. {data_line}")
fig.savefig(out / "part_tokens.png", dpi=110, bbox_inches="tight"); plt.show()

# %%
cov_table = pd.DataFrame({m: {f"≤ {t:,}": v for t, v in res["coverage"][m].items()} for m in tokenizers}).T
rec_table = pd.DataFrame(res["recommended"]).T[["max_seq_length", "coverage", "quantile_length", "capped"]]
rec_table["model context"] = [contexts.get(m) for m in rec_table.index]
cpt = pd.DataFrame({m: {"full": res["chars_per_token"][m], **res["chars_per_token_parts"][m]} for m in tokenizers}).T
display(Markdown(f"**Coverage** (share of pairs whose full sequence fits) — {data_line}"))
display((cov_table * 100).round(2).astype(str) + " %")
display(Markdown(f"**Recommended max_seq_length** for {coverage_target:.0%} coverage (multiple of {multiple_of}, "
                 f"capped by the model's context):"))
display(rec_table)
display(Markdown("**Characters per token** (total characters / total tokens):"))
display(cpt.round(2))
tok_stats = pd.DataFrame({c: res["stats"][c] for c in lengths.columns if ":" in c}).T.round(1)
display(tok_stats)

# %% [markdown]
# ## Claims vs data
# Every quantitative claim the recommendations and the paper make about the data; *holds* is judged with the rule in
# the last column. Entropy: empirical unigram Shannon entropy over the whole dataset (Solidity lexemes by
# `tacsol.profile.solidity_lex`, TAC instructions by operation name, bytecode opcodes by mnemonic).

# %%
claim_rows = claims.data_claims(lengths, tokenizers, res["entropy"])
claim_table = pd.DataFrame(claim_rows)
display(claim_table)
fig = PR.plot_entropy(res["entropy"], claims.value("paper.entropy"), f"Unigram Shannon entropy, bits per symbol: paper (arXiv:2506.19624) vs this "
                      f"dataset (Solidity: lexemes; TAC: operation per instruction; bytecode: opcode mnemonics, n/a "
                      f"without bytecode). {data_line}")
fig.savefig(out / "entropy.png", dpi=110, bbox_inches="tight"); plt.show()
for k in ("solidity", "solidity_kinds", "tac", "bytecode"):
    e = res["entropy"][k]
    if e:
        print(f"{k:15s} {e['bits']:.3f} bits, vocabulary {e['vocabulary']:,}, {e['symbols']:,} symbols; top {e['top'][:6]}")

# %% [markdown]
# ## Composition and complexity buckets
# The complexity buckets (`tacsol.profile.complexity_bucket`: TAC instructions ≤25/75/200/500, blocks ≤4/12/30/80,
# the larger bucket wins) are the strata the evaluation selects held-out functions by and reports results by.

# %%
comp = res["composition"]
fig = PR.plot_composition(comp, f"Pairs by package (top 12), solc version, optimizer setting, visibility, mutability "
                          f"and complexity bucket, stacked by split; last panel: share of pairs whose Solidity has each "
                          f"feature (dataset columns has_*). {data_line}")
fig.savefig(out / "composition.png", dpi=110, bbox_inches="tight"); plt.show()
if comp["missing"]:
    print("columns not in this dataset:", comp["missing"])
display(comp["by"]["complexity"].sort_index())

# %% [markdown]
# ## Hygiene: duplicates and leakage across splits

# %%
hyg = res["hygiene"]
display(pd.Series({k: v for k, v in hyg.items() if not isinstance(v, (list, dict))}, name="value").to_frame())
if hyg["leaked_bodies"]:
    print(f"LEAK: {hyg['leaked_bodies']} normalized bodies appear in more than one split; examples:")
    for e in hyg["leak_examples"]:
        print(" ", e["splits"], e["rows"][:4])
else:
    print("leakage check: 0 normalized function bodies in more than one split (the only acceptable number)")

# %% [markdown]
# ## Throughput of token counting
# Pairs replicated from the dataset (the counters keep no per-text cache, so a repeated pair costs what a new one of
# the same size would) and timed with all tokenizers; extrapolated to 100,000 pairs. The measured 100k figure:
# `.venv/bin/python tools/bench_profile.py --pairs 100000` (the same `tacsol.profile.bench_counting`).

# %%
bench = None
if bench_pairs:
    bench = PR.bench_counting(df, tokenizers, bench_pairs, hub=hub_tokenizers, dataset=dataset)
    fig = PR.plot_benchmark(bench, f"Token counting of TAC, Solidity and full sequences for {bench_pairs:,} pairs "
                            f"replicated from {dataset!r} ({bench['chars_per_pair']:.0f} TAC+Solidity characters per "
                            f"pair), all tokenizers in one process. Hardware: {hw} (shared machine: timings vary with "
                            "load).")
    fig.savefig(out / "benchmark.png", dpi=110, bbox_inches="tight"); plt.show()
    print(PR.bench_report(bench))
measured = paths.resolve(PR.BENCH_FILE)
if measured.exists():  # written by tools/bench_profile.py on this machine (not by this notebook)
    print("\nlast measured by tools/bench_profile.py:\n" + PR.bench_report(json.loads(measured.read_text())))

# %% [markdown]
# ## Summary

# %%
atomic_write_text(out / "claims.csv", claim_table.to_csv(index=False))
atomic_write_text(out / "lengths.csv", lengths.to_csv(index=False))
max_len = {m: r["max_seq_length"] for m, r in res["recommended"].items()}
by_family = {}
for m in tokenizers:
    by_family.setdefault(counters[m].family, max_len[m])
headline = {"pairs": len(df), **{f"max_seq_length[{m}]": v for m, v in max_len.items()},
            **{f"coverage@4096[{m}]": res["coverage"][m][4096] for m in tokenizers if 4096 in res["coverage"][m]},
            **{f"chars_per_token[{m}]": round(res["chars_per_token"][m], 3) for m in tokenizers},
            "leaked_bodies": hyg["leaked_bodies"], "exact_duplicate_rate": round(hyg["exact_duplicate_rate"], 4),
            "near_duplicate_rate": round(hyg["near_duplicate_rate"], 4),
            "claims_holding": f"{(claim_table.holds == 'yes').sum()}/{(claim_table.holds != 'n/a').sum()}"}
path = summary.write_summary(
    output_dir, phase="01_data_profiling", headline=headline, params=params, smoke=smoke,
    dataset=dataset, splits=split_counts, tokenizers={m: c.source for m, c in counters.items()},
    max_seq_length=max_len, max_seq_length_by_family=by_family, coverage_target=coverage_target,
    coverage={m: {str(t): v for t, v in c.items()} for m, c in res["coverage"].items()},
    recommended=res["recommended"], chars_per_token=res["chars_per_token"],
    entropy={k: (v and {x: v[x] for x in ("bits", "vocabulary", "symbols")}) for k, v in res["entropy"].items()},
    claims=claim_rows, hygiene={k: v for k, v in hyg.items()}, stats=res["stats"],
    composition_flags=comp["flags"], benchmark=bench, tac_levels=level_rows,
    seconds=round(time.perf_counter() - t_start, 1))
print("wrote", path)
print(json.dumps(headline, indent=1))
if fail_on_leak and hyg["leaked_bodies"]:
    raise RuntimeError(f"leakage: {hyg['leaked_bodies']} normalized function bodies are in more than one split "
                       f"(0 is the only acceptable number); examples above and in summary.json")
