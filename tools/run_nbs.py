"""Execute course notebooks in place, top to bottom, keeping outputs and execution counts.

Usage: python tools/run_nbs.py nbs/11_basics.ipynb [more.ipynb ...]   (no argument: every notebook)

The notebooks are committed executed so that readers see real results and `pytest --nbval`
can re-check every stored output. Only volatile metadata (cell timings, interpreter version)
is stripped, so re-running a notebook changes the diff only where results changed.
"""
import sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def strip_volatile(nb):
    "Drop per-cell timing metadata and interpreter details; keep outputs and counts."
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
    meta = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    if "widgets" in nb.metadata: meta["widgets"] = nb.metadata["widgets"]  # final state of tqdm bars, for readers
    nb.metadata = nbformat.from_dict(meta)
    return nb


def run(path, timeout=1800):
    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(strip_volatile(nb), path)
    print(f"{path.relative_to(ROOT)}: executed in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    paths = sys.argv[1:] or sorted(str(p) for p in (ROOT / "nbs").glob("*.ipynb"))
    for p in paths: run(p)
