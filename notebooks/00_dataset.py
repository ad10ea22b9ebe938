# %% [markdown]
# # 00 · Dataset — real Solidity → solc → per-function TAC → aligned (TAC, Solidity) pairs, and how correct they are
#
# Fetches the npm packages of `lib/tacsol/data/corpus_manifest.yaml` (and/or your own folders of .sol files or
# Foundry/Hardhat projects), compiles every contract with solcjs (version from its pragmas, several settings),
# lifts each contract's runtime bytecode to per-function TAC with `tacsol.lift`, pairs every function with the
# Solidity of its most-derived definition by selector, and saves a `datasets.DatasetDict` under
# `outputs/data/<dataset_name>/` with `manifest.json`, `rejects.jsonl` and `correctness.json`. Everything is cached
# (npm tarballs, compiler artifacts, per-unit pairs), so a rerun only redoes what changed.
#
# The embedded default is a CPU demo: the first few permissively licensed packages, capped compile units.
# `params/00_dataset.yaml` builds the full corpus (hours of CPU on a cold cache; minutes warm).

# %% tags=["parameters"]
# Embedded CPU default (plain literals only). `-f params/00_dataset.yaml` builds the full corpus.
run_name = "demo"
output_dir = "outputs/demo/00_dataset"
smoke = True
dataset_name = "demo"
packages = None            # manifest names or name@version; None: the manifest (capped by max_packages)
max_packages = 2           # first N compiled packages of the manifest; None: all
folders = []               # your .sol folders / Foundry / Hardhat projects
settings = ["noopt", "opt200"]   # noopt | opt<runs> | viair-opt<runs>, each optionally @<evmVersion>
permissive_only = True
version_policy = "lowest"  # which installed solc matches the pragmas: lowest | highest
max_units = 160            # cap on compile units (each unit: one main file × one setting); None: all
workers = 2
compile_timeout_s = 120.0
tac_level = 1              # TAC level: 1 paper-faithful, 2 compact, 3 compact with require (docs/tac-format.md)
callee_budget = 3584       # levels 2-3: characters of an example past which a callee prints as its summary

# %%
import tacsol.params
params = tacsol.params.check_notebook(globals(), "00")   # refuses unknown / mistyped keys
import json
import collections
import pandas as pd
import matplotlib.pyplot as plt
from tacsol import paths, summary, pairs
out = paths.resolve(output_dir); out.mkdir(parents=True, exist_ok=True)
hw = summary.hardware_line()
print("hardware:", hw)

# %% [markdown]
# ## Build (or reuse the cache)

# %%
cfg = pairs.BuildConfig(name=dataset_name, packages=packages, max_packages=max_packages, folders=folders,
                        settings=settings, permissive_only=permissive_only, version_policy=version_policy,
                        max_units=max_units, workers=workers, timeout_s=compile_timeout_s,
                        tac_level=tac_level, callee_budget=callee_budget)
manifest = pairs.build(cfg)
data_dir = paths.outputs_dir() / "data" / dataset_name
dd = pairs.load(dataset_name)
print(dd)
print(json.dumps({k: manifest[k] for k in ("pairs", "pairs_before_dedup", "exact_duplicates_removed",
                                           "near_dup_groups", "contracts", "units", "units_compiled_ok",
                                           "units_pairs_from_cache", "timing_s")}, indent=1))

# %% [markdown]
# ## Counts

# %%
counts = {k: pd.Series(manifest[k], name="pairs") for k in ("per_split", "per_package", "per_solc_version", "per_settings")}
for k, s in counts.items():
    print(f"--- {k}"); print(s.to_string())
print("licences:", manifest["licenses"])

# %% [markdown]
# ## Rejects by reason (one line per rejected item in `rejects.jsonl`)

# %%
rej = [json.loads(x) for x in (data_dir / "rejects.jsonl").read_text().splitlines()]
by_reason = collections.Counter(r["reason"] for r in rej)
print(pd.Series(by_reason, name="items", dtype=int).sort_values(ascending=False).to_string() if rej else "no rejects")
for reason in by_reason:
    ex = next(r for r in rej if r["reason"] == reason)
    print(f"e.g. {reason}: {ex['item']} — {ex['detail'][:160]!r}")

# %% [markdown]
# ## Correctness report (measured on this build; `correctness.json`)
# *selector_recovery*: share of solc's `methodIdentifiers` found by the lifter; *signature_match*: signatures computed
# from the AST vs solc's; *X_recall*: of the functions whose source (with modifiers and internal callees) emits an
# event / writes storage / makes an external call / returns data, the share whose TAC has LOG / SSTORE / a CALL-family
# op / RETURN; *isolation_ok*: unoptimized legacy builds, functions with ≤ 1 % of TAC instructions that the source map
# attributes to unrelated functions (null while the lifter does not expose instruction offsets).

# %%
report = json.loads((data_dir / "correctness.json").read_text())
table = pd.DataFrame(report).T.drop(columns=["missing_selectors_examples", "body_miss_examples"], errors="ignore")
pct_cols = [c for c in table.columns if c.endswith("_pct")]
print(table[["contracts", "selectors_expected"] + pct_cols].to_string())
fig, ax = plt.subplots(figsize=(10, 3.8))
table[[c for c in pct_cols if "foreign" not in c]].astype(float).plot.bar(ax=ax, width=0.8)
ax.set_ylim(90, 100.5); ax.set_ylabel("%"); ax.legend(fontsize=7, ncol=4, loc="lower right")
ax.set_title("Lift/alignment correctness by solc minor / setting", fontsize=10)
fig.text(0.01, -0.06, f"Data: dataset '{dataset_name}' ({manifest['pairs']} pairs, {manifest['contracts']} contracts) "
         f"built here with solcjs + tacsol.lift. Hardware: {hw}.", fontsize=7)
fig.tight_layout(); fig.savefig(out / "correctness.png", dpi=110, bbox_inches="tight"); plt.show()
print("examples of body-check misses:", *report.get("all", {}).get("body_miss_examples", []) or ["none"], sep="\n  ")
print("examples of missing selectors:", *report.get("all", {}).get("missing_selectors_examples", []) or ["none"], sep="\n  ")

# %% [markdown]
# ## Sizes: TAC vs Solidity characters per pair

# %%
df = pd.concat([dd[s].to_pandas() for s in dd])
ratio = (df.tac_chars / df.sol_chars.clip(lower=1)).median() if len(df) else float("nan")
fig, ax = plt.subplots(figsize=(6, 3.5))
if len(df):
    ax.hist([df.tac_chars.clip(upper=30000), df.sol_chars.clip(upper=30000)], bins=40, label=["TAC", "Solidity"], log=True)
ax.set_xlabel("characters per function (clipped at 30k)"); ax.set_ylabel("pairs"); ax.legend()
ax.set_title(f"median TAC/Solidity length ratio {ratio:.1f}", fontsize=10)
fig.text(0.01, -0.08, f"Data: dataset '{dataset_name}'. Hardware: {hw}.", fontsize=7)
fig.tight_layout(); fig.savefig(out / "sizes.png", dpi=110, bbox_inches="tight"); plt.show()
print(df[["has_loop", "has_external_call", "has_storage_write", "has_event", "has_assembly"]].mean().round(3).to_string()
      if len(df) else "")

# %% [markdown]
# ## One pair

# %%
if len(dd["train"]):
    r = dd["train"][0]
    print(r["package"], r["contract"], r["signature"], r["settings"])
    print(r["solidity"][:800]); print("--- context:", r["context"][:400]); print("--- TAC:"); print(r["tac"][:1500])

# %%
allrow = report.get("all", {})
headline = {"pairs": manifest["pairs"], "contracts": manifest["contracts"],
            "solc_minor_versions": len(manifest["solc_minor_versions"]),
            **{k: allrow.get(k) for k in ("selector_recovery_pct", "signature_match_pct", "event_recall_pct",
                                          "storage_recall_pct", "call_recall_pct", "return_recall_pct",
                                          "isolation_ok_pct")},
            "median_tac_sol_char_ratio": round(float(ratio), 2) if ratio == ratio else None}
summary.write_summary(output_dir, phase="00_dataset", headline=headline, params=params, smoke=smoke,
                      dataset=str(data_dir), rejects=dict(by_reason))
headline
