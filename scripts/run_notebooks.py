#!/usr/bin/env python3
"""Execute notebooks headless with nbclient (the CI "notebooks" stage).

    scripts/run_notebooks.py [notebook ...]      default: every notebooks/*.ipynb

Each notebook runs in a fresh kernel with notebooks/ as its working directory,
a per-cell timeout (NB_TIMEOUT, default 300 s) and the caller's environment
(QOSSIM_BIN, QOSSIM_NB_OUT, the notebooks' own variables). Prints each
notebook's wall time; exits 1 if any notebook fails, naming the cell and
the error. Outputs are never written back: the committed notebooks stay
stripped.
"""
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parent.parent


def execute(path, env=None):
    """Run one notebook; raise CellExecutionError (or another error) on failure."""
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
