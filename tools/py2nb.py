#!/usr/bin/env python
"""Author notebooks as percent-format scripts, write clean .ipynb (no outputs).

Cells start with `# %%` (code), `# %% [markdown]` (markdown, lines prefixed by '# '),
and `# %% tags=["parameters"]` for tags. Usage: python tools/py2nb.py src.py notebooks/NN_name.ipynb
The .ipynb is the source of truth once written; this is an authoring convenience only."""
import json
import re
import sys

import nbformat

HEADER = re.compile(r"^# %%(?P<md>\s*\[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def convert(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    cells, cur = [], None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            cur = {"md": bool(m.group("md")), "tags": json.loads(m.group("tags")) if m.group("tags") else [], "lines": []}
            cells.append(cur)
        elif cur is not None:
            cur["lines"].append(line)
    for c in cells:
        lines = c["lines"]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if c["md"]:
            src = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in lines)
            cell = nbformat.v4.new_markdown_cell(src)
        else:
            cell = nbformat.v4.new_code_cell("\n".join(lines))
        if c["tags"]:
            cell.metadata["tags"] = c["tags"]
        nb.cells.append(cell)
    return nb


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    nb = convert(open(src, encoding="utf-8").read())
    nbformat.write(nb, dst)
    print(f"wrote {dst} ({len(nb.cells)} cells)")
