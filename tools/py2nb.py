"""Turn a percent-format script into a notebook (an authoring aid; the notebook is the source of truth).

    # %% [markdown]
    # # Title
    # > summary
    # %%
    #| export
    def f(x): return x

Usage: python tools/py2nb.py draft.py nbs/NN_topic.ipynb
Then execute it with tools/run_nbs.py and export with nbdev-export.
"""
import re, sys
import nbformat

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
_marker = re.compile(r"^# %%(?:\s*\[(markdown|md)\])?\s*$")


def convert(text):
    cells, kind, buf = [], None, []
    def flush():
        if kind is None: return
        src = "\n".join(buf).strip("\n")
        if kind == "markdown":
            src = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in src.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(src))
        elif src.strip():
            cells.append(nbformat.v4.new_code_cell(src))
    for line in text.splitlines():
        m = _marker.match(line)
        if m:
            flush(); kind, buf = ("markdown" if m.group(1) else "code"), []
        else:
            buf.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    return nb


if __name__ == "__main__":
    src, dst = sys.argv[1:3]
    nbformat.write(convert(open(src).read()), dst)
    print(f"wrote {dst}")
