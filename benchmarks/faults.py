"""Fault list of issue 15: each fault is built in a temporary folder, the command a learner would
run is executed in a fresh process (``RUST_BACKTRACE=1``, no terminal), and one row is printed:
fault, outcome (the first line the learner reads), data lost (rows of the warehouse's Delta tables
before minus after, from the log statistics) and whether a traceback showed. No JVM.

    .venv/bin/python benchmarks/faults.py                  # every fault: a Markdown table (~2 min)
    .venv/bin/python benchmarks/faults.py --only commit    # the faults whose name holds "commit"

Exits 1 when any row lost data or showed a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

CLI = str(Path(sys.executable).parent / "medilake_lab")
TRACES = ("Traceback (most recent call last)", "panicked at", "stack backtrace", "MarkupError")


@dataclass
class Trial:
    """One fault: the command (``medilake_lab`` arguments), its environment, the warehouse it may
    change, and how to read the outcome from its output (default: the first line)."""

    args: list[str]
    warehouse: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    as_nobody: bool = False  # run as an unprivileged user (root reads unreadable files)
    outcome: Callable[[str], str] | None = None


def _bronze(root: Path) -> Path:
    """A warehouse holding bronze.patients: three appends written with delta-rs."""
    warehouse = root / "wh"
    for batch in range(3):
        rows = pa.table({"patient_id": [f"P{batch}{i}" for i in range(10)], "_batch_id": [f"00{batch + 1}"] * 10})
        write_deltalake(str(warehouse / "bronze" / "patients"), rows, mode="append")
    return warehouse


def _log(warehouse: Path) -> list[Path]:
    return sorted((warehouse / "bronze" / "patients" / "_delta_log").glob("*.json"))


def _first_failure(output: str) -> str:
    """The first FAIL finding of ``check --json`` output."""
    try:
        reports = json.loads(output[output.index("["):])
    except ValueError:
        return output.strip().splitlines()[0] if output.strip() else "(no output)"
    return next((r["finding"] for rep in reports for r in rep["results"] if r["status"] == "FAIL"), "all passed")


def _check(warehouse: Path, data: Path) -> Trial:
    return Trial(["check", "01", "--json", "-w", str(warehouse), "-d", str(data)], warehouse,
                 outcome=_first_failure)


def truncated_commit(root: Path, data: Path) -> Trial:
    latest = _log(wh := _bronze(root))[-1]
    latest.write_bytes(latest.read_bytes()[:100])
    return _check(wh, data)


def empty_commit(root: Path, data: Path) -> Trial:
    _log(wh := _bronze(root))[-1].write_bytes(b"")
    return _check(wh, data)


def missing_parquet(root: Path, data: Path) -> Trial:
    next((wh := _bronze(root)).rglob("*.parquet")).unlink()
    return _check(wh, data)


def no_delta_log(root: Path, data: Path) -> Trial:
    shutil.rmtree((wh := _bronze(root)) / "bronze" / "patients" / "_delta_log")
    return _check(wh, data)


def cut_checkpoint(root: Path, data: Path) -> Trial:
    DeltaTable(str((wh := _bronze(root)) / "bronze" / "patients")).create_checkpoint()
    checkpoint = next((wh / "bronze" / "patients" / "_delta_log").glob("*.checkpoint.parquet"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    return _check(wh, data)


def unreadable_commit(root: Path, data: Path) -> Trial:
    wh = _bronze(root)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    _log(wh)[-1].chmod(0)
    trial = _check(wh, data)
    trial.as_nobody = os.geteuid() == 0
    return trial


def markup_in_path(root: Path, data: Path) -> Trial:
    wh = root / "[red]" / "[" / "]" / "wh"  # delta-rs cannot write there (it panics), it can read
    wh.parent.mkdir(parents=True)
    shutil.move(_bronze(root), wh)
    _log(wh)[-1].write_bytes(b"")
    return Trial(["check", "01", "-w", str(wh), "-d", str(data)], wh, env={"COLUMNS": "300"},
                 outcome=lambda out: next((line.strip(" │┃") for line in out.splitlines() if "damaged" in line),
                                          out.strip().splitlines()[-1]))


def catchup_without_terminal(root: Path, data: Path) -> Trial:
    wh = _bronze(root)
    return Trial(["catchup", "02", "-w", str(wh), "-d", str(data)], wh,
                 outcome=lambda out: next((line for line in out.splitlines() if "Aborted" in line), out[-200:]))


def reset_without_terminal(root: Path, data: Path) -> Trial:
    wh = _bronze(root)
    return Trial(["reset", "01", "-w", str(wh)], wh,
                 outcome=lambda out: next((line for line in out.splitlines() if "Aborted" in line), out[-200:]))


def _progress(content: str | None) -> Callable[[Path, Path], Trial]:
    def make(root: Path, data: Path) -> Trial:
        state = root / "state"
        state.mkdir()
        if content is None:
            (state / "progress.json").mkdir()
        else:
            (state / "progress.json").write_text(content)
        return Trial(["status"], env={"MEDILAKE_STATE": str(state)},
                     outcome=lambda out: next((line for line in out.splitlines()
                                               if line.startswith(("note:", "error:"))), out.strip().splitlines()[0]))
    return make


def run_without_terminal(root: Path, data: Path) -> Trial:
    wh = _bronze(root)
    return Trial(["run", "01", "-w", str(wh), "-d", str(data)], wh,
                 outcome=lambda out: next((line for line in out.splitlines() if "Aborted" in line), out[-200:]))


def _small_data(root: Path, extra: bytes) -> Path:
    """A small generated data set (scale 0.02) whose patients batch 002 ends with ``extra`` lines."""
    import gzip

    from medilake_lab.contract import feeds
    from medilake_lab.datagen import generate

    generate(data := root / "data", scale=0.02, seed=3)
    path = Path(feeds.FEEDS["patients"].path(str(data), "002"))
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + extra))
    return data


def _solution_bronze(root: Path, data: Path, verbatim: bytes | None = None) -> Path:
    """Lab 01's bronze for ``data`` as the solution leaves it (tests/fast/medallion, delta-rs);
    ``verbatim``: a malformed line whose bytes bronze.patients keeps as they came, as Spark does."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from fast.medallion import bronze_batch, build_bronze
    from medilake_lab.contract import feeds

    build_bronze(wh := root / "wh", data)
    if verbatim is not None:
        table = wh / "bronze" / "patients"
        shutil.rmtree(table)
        shown = verbatim.decode("utf-8", "replace")
        for batch in feeds.BATCHES:
            part = bronze_batch("patients", batch, data)
            raw = [verbatim if v == shown else None if v is None else v.encode()
                   for v in part["_corrupt_record"].to_pylist()]
            part = part.set_column(part.schema.get_field_index("_corrupt_record"), "_corrupt_record",
                                   pa.array(raw, pa.binary()).view(pa.string()))
            write_deltalake(str(table), part, mode="append", schema_mode="merge")
    return wh


def bronze_not_utf8(root: Path, data: Path) -> Trial:
    line = b'{"patient_id": "PAT\xff\xfe01", "op": "I"}'
    small = _small_data(root, line + b"\n")
    return _check(_solution_bronze(root, small, verbatim=line), small)


def json_array_line(root: Path, data: Path) -> Trial:
    pair = b'[{"patient_id": "ARR0001", "op": "I"}, {"patient_id": "ARR0002", "op": "I"}]\n'
    small = _small_data(root, pair)
    return _check(_solution_bronze(root, small), small)


def synthea_not_utf8(root: Path, data: Path) -> Trial:
    (src := root / "synthea").mkdir()
    (src / "patients.csv").write_bytes("Id,BIRTHDATE,FIRST,LAST,GENDER\np1,1980-05-01,Zoë,Lee,F\n".encode("latin-1"))
    return Trial(["import", "synthea", str(src), "--out", str(root / "out")])


def generate_infinite_scale(root: Path, data: Path) -> Trial:
    return Trial(["generate", "--scale", "inf", "--out", str(root / "out")],
                 outcome=lambda out: " ".join(line.strip(" │╭╮╰╯─") for line in out.splitlines()
                                              if "scale" in line.lower())[:160])


FAULTS: dict[str, Callable[[Path, Path], Trial]] = {
    "truncated latest commit (RUST_BACKTRACE=1)": truncated_commit,
    "empty latest commit": empty_commit,
    "missing Parquet data file": missing_parquet,
    "table folder without _delta_log": no_delta_log,
    "unreadable latest commit (permission)": unreadable_commit,
    "cut-off checkpoint Parquet": cut_checkpoint,
    "`[/]` in the warehouse path + damaged table": markup_in_path,
    "catchup 02 without --yes, no terminal": catchup_without_terminal,
    "reset 01 without --yes, no terminal": reset_without_terminal,
    "progress.json empty": _progress(""),
    "progress.json not JSON": _progress("{oops"),
    "progress.json is null": _progress("null"),
    "progress.json is a list": _progress("[]"),
    "progress.json is a folder": _progress(None),
    "progress.json has a string format_version": _progress('{"format_version": "1", "labs": {}}'),
    "progress.json of a newer format (refused, kept)": _progress('{"format_version": 99}'),
    "run 01 over existing tables, no --yes, no terminal": run_without_terminal,
    "bronze _corrupt_record holding bytes that are not UTF-8": bronze_not_utf8,
    "JSON array of two objects on one feed line": json_array_line,
    "import synthea: a CSV that is not UTF-8": synthea_not_utf8,
    "generate --scale inf": generate_infinite_scale,
}


def rows(warehouse: Path | None) -> int:
    """Rows of every readable Delta table under ``warehouse`` (log statistics); 0 for none."""
    total = 0
    for log in (warehouse.glob("*/*/_delta_log") if warehouse and warehouse.exists() else []):
        try:
            actions = DeltaTable(str(log.parent)).get_add_actions(flatten=True)
            total += sum(pa.RecordBatchReader.from_stream(actions).read_all().column("num_records").to_pylist())
        except Exception:  # noqa: BLE001 - a damaged table counts as it counted before the command
            continue
    return total


def run(name: str, make: Callable[[Path, Path], Trial], data: Path) -> tuple[str, str, int, bool]:
    """Build fault ``name`` in a temporary folder and run its command; returns (fault, outcome,
    rows lost, traceback shown)."""
    with tempfile.TemporaryDirectory(prefix="fault-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        trial = make(root, data)
        before = rows(trial.warehouse)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if trial.as_nobody else []
        env = {**os.environ, "RUST_BACKTRACE": "1", "MEDILAKE_STATE": str(root / "own-state"), **trial.env}
        done = subprocess.run([*prefix, CLI, *trial.args], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=300)
        output = done.stdout + done.stderr
        lost = before - rows(trial.warehouse)
        reader = trial.outcome or (lambda out: out.strip().splitlines()[0] if out.strip() else "(no output)")
        outcome = f"exit {done.returncode}: {reader(done.stdout if trial.outcome is _first_failure else output)}"
        return name, outcome.replace(str(root), "<tmp>"), lost, any(t in output for t in TRACES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=[""], help="run the faults whose name holds one of these")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "data",
                        help="raw-data folder the grader compares with (default: the bundled data/)")
    args = parser.parse_args(argv)
    chosen = {name: make for name, make in FAULTS.items() if any(word in name for word in args.only)}
    rows_out = [run(name, make, args.data) for name, make in chosen.items()]
    print("| fault | outcome | data lost (rows) | traceback |")
    print("|---|---|---|---|")
    for name, outcome, lost, traced in rows_out:
        print(f"| {name} | {outcome.replace('|', '/')} | {lost} | {'yes' if traced else 'no'} |")
    return 1 if any(traced or lost for _, _, lost, traced in rows_out) else 0


if __name__ == "__main__":
    sys.exit(main())
