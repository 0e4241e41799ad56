#!/usr/bin/env python3
"""The notebooks stage of scripts/test.sh.

1. Executes notebooks/teaching-qos.ipynb and notebooks/research-compare.ipynb
   headless (nbclient); both must pass (their asserts are the checks).
2. Negative test: copies the teaching results, makes one QoS 2 reading a
   duplicate (runs.csv duplicates = 1 and that message's copies = 2 in
   messages.csv), and runs the teaching notebook on the doctored copy via
   QOSSIM_TEACHING_RESULTS: it must fail at the "QoS 2 must deliver exactly
   once" assertion. The untouched copy, read the same way, must pass — so
   the failure comes from the doctored number, not from reading a copy.
3. notebooks/timeseries.ipynb on the qos-levels run of step 1: it must pass
   (qossim writes timeseries.csv and events.csv in every run directory; a
   missing file makes the notebook fail loudly).

Environment: QOSSIM_BIN (default target/release/qossim), QOSSIM_NB_OUT (a
temporary directory by default); QOSSIM_COMPARE_* pass through to the
research notebook. Prints each notebook's time; exits 1 on any failure.
"""
import csv
import os
import pathlib
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from run_notebooks import ROOT, execute  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

NB = ROOT / "notebooks"
failures = []


def timed(name, fn):
    t0 = time.monotonic()
    try:
        fn()
        status = "ok"
    except Exception as e:  # report every failure, then carry on
        status = "FAILED"
        failures.append(f"{name}: {str(e)[-2000:]}")
    print(f"{name}: {status} in {time.monotonic() - t0:.1f} s", flush=True)


def must_fail(path, env, needle):
    try:
        execute(path, env)
    except CellExecutionError as e:
        if needle not in str(e):
            raise AssertionError(f"{path.name} failed, but not with {needle!r}:\n{str(e)[-1500:]}")
        return
    raise AssertionError(f"{path.name} passed on input that must make it fail ({needle!r})")


def doctor(results):
    """One QoS 2 reading delivered twice: in runs.csv and in messages.csv."""
    qd = results / "qos-levels"
    rows = list(csv.DictReader(open(qd / "runs.csv", newline="")))
    fields = list(rows[0].keys())
    for r in rows:
        if r["flow"] == "qos2":
            assert r["duplicates"] == "0", r["duplicates"]
            r["duplicates"] = "1"
    with open(qd / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    msgs = list(csv.DictReader(open(qd / "messages.csv", newline="")))
    fields = list(msgs[0].keys())
    hit = next(m for m in msgs if m["flow"] == "qos2" and m["delivered_at_ms"])
    hit["copies"] = "2"
    with open(qd / "messages.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(msgs)


def assert_figures(nb, at_least):
    """The headless run saved the notebook's figures as PNG files next to the results."""
    files = [pathlib.Path(f) for f in nb.metadata.get("qossim_figures", [])]
    if len(files) < at_least:
        raise AssertionError(f"{len(files)} figures saved, expected at least {at_least}: {files}")
    for f in files:
        head = f.read_bytes()[:8]
        if head != b"\x89PNG\r\n\x1a\n" or f.stat().st_size < 2000:
            raise AssertionError(f"{f} is not a drawn PNG figure")
        if f.parent.parent != pathlib.Path(os.environ["QOSSIM_NB_OUT"]) / "figures":
            raise AssertionError(f"{f} is not next to the results")


def assert_stripped():
    """Committed notebooks carry no outputs and no execution counts."""
    import nbformat
    for p in sorted(NB.glob("*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code" and (c.outputs or c.execution_count is not None):
                raise AssertionError(f"{p.name}: outputs not stripped (clear them before committing)")


def main():
    timed("notebooks stripped of outputs", assert_stripped)
    out = pathlib.Path(os.environ.get("QOSSIM_NB_OUT") or tempfile.mkdtemp(prefix="qossim-nb-"))
    os.environ["QOSSIM_NB_OUT"] = str(out)
    os.environ.pop("QOSSIM_TEACHING_RESULTS", None)
    os.environ.pop("QOSSIM_TIMESERIES_RESULTS", None)
    # each notebook's figures are saved next to the results (at least one
    # per figure the notebooks draw: teaching 6, compare 2, time series 3)
    timed("teaching-qos.ipynb", lambda: assert_figures(execute(NB / "teaching-qos.ipynb"), 6))
    timed("research-compare.ipynb", lambda: assert_figures(execute(NB / "research-compare.ipynb"), 2))

    teaching = out / "teaching"
    if (teaching / "qos-levels" / "runs.csv").exists():
        good, bad = out / "teaching-copy", out / "teaching-doctored"
        for d in (good, bad):
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(teaching, d)
        doctor(bad)
        timed("teaching-qos.ipynb on a copy of its results",
              lambda: execute(NB / "teaching-qos.ipynb", {"QOSSIM_TEACHING_RESULTS": str(good)}))
        timed("teaching-qos.ipynb on a doctored QoS 2 duplicate (must fail)",
              lambda: must_fail(NB / "teaching-qos.ipynb", {"QOSSIM_TEACHING_RESULTS": str(bad)},
                                "QoS 2 must deliver exactly once"))
    else:
        failures.append("no teaching results to doctor (the teaching notebook did not run)")

    run = teaching / "qos-levels"
    env = {"QOSSIM_TIMESERIES_RESULTS": str(run)}
    timed("timeseries.ipynb", lambda: assert_figures(execute(NB / "timeseries.ipynb", env), 3))

    for f in failures:
        print("FAILED", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
