#!/usr/bin/env python3
"""Execute notebooks headless with nbclient (the CI "notebooks" stage).

    scripts/run_notebooks.py [notebook ...]      default: every notebooks/*.ipynb

Each notebook runs in a fresh kernel with notebooks/ as its working directory,
a per-cell timeout (NB_TIMEOUT, default 300 s) and the caller's environment
(QOSSIM_BIN, QOSSIM_NB_OUT, the notebooks' own variables). Prints each
notebook's wall time; exits 1 if any notebook fails, naming the cell and
the error. Outputs are never written back: the committed notebooks stay
stripped; every figure a notebook draws is saved as PNG next to its results,
in $QOSSIM_NB_OUT/figures/<notebook>/ (default results/notebooks/figures/),
named after the cell that drew it (cell-07-1.png: the first figure of cell 7).
"""
import base64
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parent.parent


def save_figures(nb, path, figures):
    """Write every PNG a notebook's cells displayed to figures/<stem>/; the list of files."""
    d = pathlib.Path(figures) / pathlib.Path(path).stem
    if d.exists():
        for old in d.glob("cell-*.png"):
            old.unlink()
    saved = []
    for i, cell in enumerate(nb.cells):
        k = 0
        for o in cell.get("outputs", []):
            png = o.get("data", {}).get("image/png")
            if png is None:
                continue
            k += 1
            d.mkdir(parents=True, exist_ok=True)
            f = d / f"cell-{i:02d}-{k}.png"
            f.write_bytes(base64.b64decode(png))
            saved.append(f)
    return saved


def figures_dir():
    """Where figures go: next to the notebooks' results."""
    out = os.environ.get("QOSSIM_NB_OUT") or str(ROOT / "results" / "notebooks")
    return pathlib.Path(out) / "figures"


def execute(path, env=None):
    """Run one notebook, save its figures (save_figures); raise CellExecutionError
    (or another error) on failure."""
    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    if env:
        os.environ.update(env)
    try:
        NotebookClient(
            nb,
            timeout=int(os.environ.get("NB_TIMEOUT", "300")),
            kernel_name="python3",
            resources={"metadata": {"path": str(pathlib.Path(path).parent)}},
        ).execute()
        nb.metadata["qossim_figures"] = [str(f) for f in save_figures(nb, path, figures_dir())]
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def main(argv):
    paths = [pathlib.Path(p) for p in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 1
    failed = []
    for p in paths:
        t0 = time.monotonic()
        try:
            execute(p)
            status = "ok"
        except CellExecutionError as e:
            status = "FAILED"
            failed.append((p, str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)))
            print(str(e)[-3000:], file=sys.stderr)
        except Exception as e:  # kernel died, timeout, unreadable notebook
            status = "FAILED"
            failed.append((p, repr(e)))
        print(f"notebook {p.name}: {status} in {time.monotonic() - t0:.1f} s", flush=True)
    for p, why in failed:
        print(f"FAILED {p}: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
