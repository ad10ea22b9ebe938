# %% [markdown]
# # NN · Title — the question this phase answers
#
# One paragraph: what it reads, what it computes, what it writes (`summary.json`, figures) and what the
# defaults do on a CPU machine vs `params/NN_x.yaml` on GPUs.

# %% tags=["parameters"]
# Embedded CPU default (plain literals only). `-f params/NN_x.yaml` runs the real phase.
run_name = "demo"
output_dir = "outputs/demo/NN_x"
smoke = True

# %%
import tacsol.params
params = tacsol.params.check_notebook(globals(), "NN")   # refuses unknown / mistyped keys
from tacsol import paths, summary
out = paths.resolve(output_dir); out.mkdir(parents=True, exist_ok=True)
print("hardware:", summary.hardware_line())

# %% [markdown]
# ## Section ... (calls into tacsol, draws; captions say what data/model/hardware produced each number)

# %%
summary.write_summary(output_dir, phase="NN_x", headline={"example": 1.0}, params=params, smoke=smoke)
