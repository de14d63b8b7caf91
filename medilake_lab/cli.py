"""The ``medilake_lab`` command line (typer + rich).

Exit codes: 0 success (``check``: every check passed); 1 a check failed, or a kit error that is a
failure (the machine not set up, unreadable data or progress file, a notebook that raised…);
2 a usage error (typer's own, or a kit :class:`~medilake_lab.errors.UsageError` such as an
unknown lab); 130 interrupted (Ctrl-C), after the notes saying what was undone.
Kit errors (:class:`~medilake_lab.errors.MediLakeError`) are handled in one place,
:class:`KitCommands`: their message goes to stderr without a traceback; any other exception is a
bug and keeps its traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from medilake_lab.contract import feeds
from medilake_lab.errors import DataError, MediLakeError, SetupError, UsageError
from medilake_lab.quiz.commands import print_study_status
from medilake_lab.quiz.commands import register as register_quiz_commands
from medilake_lab.runtime import config

console = Console()
err_console = Console(stderr=True, highlight=False)


def report_error(exc: MediLakeError) -> None:
    """Print a kit error for the learner: ``error: <message>`` in red on stderr, then its notes
    (``exc.add_note``), one line each, never wrapped (paths stay whole)."""
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    for note in getattr(exc, "__notes__", ()):
        err_console.print(escape(note), soft_wrap=True)


class KitCommands(TyperGroup):
    """The root command group: every command, sub-app (``dev``, ``import``) and the quiz
    commands run inside its :meth:`invoke`, the one place kit errors are turned into a message
    (:func:`report_error`) and the exit code their class carries (``MediLakeError.exit_code``)."""

    def invoke(self, ctx: Any) -> Any:  # typer's (vendored) click context
        try:
            return super().invoke(ctx)
        except MediLakeError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:  # Ctrl-C: what was undone (see workflow.catchup) is noted
            err_console.print("[bold red]interrupted[/]")
            for note in getattr(exc, "__notes__", ()):
                err_console.print(escape(note), soft_wrap=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=KitCommands,
    help="MediLake Lab: build a bronze → silver → gold EHR lakehouse on local Delta Lake "
    "and get graded.",
    no_args_is_help=True,
    add_completion=False,
)
dev_app = typer.Typer(help="Commands for kit developers.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")

WAREHOUSE_OPT = typer.Option(None, "--warehouse", "-w",
                             help="Warehouse root (default: .medilake/warehouse or $MEDILAKE_WAREHOUSE).")
DATA_OPT = typer.Option(None, "--data", "-d", help="Raw-data folder (default: data/ or $MEDILAKE_DATA).")


def _named(what: str, path: Path, where: str) -> str:
    return f"{what} {path} ({'default' if where == 'default' else f'from {where}'})"


def _check_paths(warehouse: Path | None, data: Path | None, *, need_warehouse: bool = True,
                 need_data: bool = True) -> None:
    """UsageError (exit 2) for a warehouse that is not a folder or, with ``need_warehouse``,
    that was given (-w or $MEDILAKE_WAREHOUSE) but does not exist; with ``need_data``, for a
    data folder without raw feeds. The default warehouse may be missing: it is before lab 01."""
    wh = config.warehouse_dir(warehouse)
    where = config.origin(config.WAREHOUSE_ENV, "--warehouse", warehouse)
    if wh.exists() and not wh.is_dir():
        raise UsageError(f"{_named('warehouse', wh, where)} is not a folder")
    if need_warehouse and where != "default" and not wh.exists():
        raise UsageError(f"{_named('warehouse', wh, where)} does not exist: check the path "
                         "(lab 01 creates the warehouse)")
    folder = config.data_dir(data)
    if need_data and not feeds.has_raw_files(folder):
        where = config.origin(config.DATA_ENV, "--data", data)
        raise UsageError(f"no raw feeds in {_named('data folder', folder, where)}: "
                         "run `medilake_lab generate` or pass --data DIR")


@app.command()
def setup(force: bool = typer.Option(False, help="Fetch, compile and write the archive again even if cached.")) -> None:
    """Check Java, fetch the Delta Lake jars from Maven Central once (then work offline), compile the
    kit's local file system classes (Spark writes files without a process each) and write the JVM's
    class-data archive (Spark sessions start faster)."""
    from medilake_lab.runtime.class_archive import build_archive
    from medilake_lab.runtime.jars import require_java, resolve_delta_jars
    from medilake_lab.runtime.local_fs import build_jar

    java = require_java()
    if not console.is_terminal:  # no spinner then: say what the minute or two of silence is
        console.print(f"Resolving {config.DELTA_PACKAGE} (the first time from Maven Central: a minute or two)…")
    with console.status(f"Resolving {config.DELTA_PACKAGE} from Maven Central…"):
        jars = resolve_delta_jars(force=force)
    console.print(f"[green]OK[/] Java {java}; {len(jars)} Delta jars cached in {escape(str(config.jars_dir()))}")
    try:  # before the archive, whose class path starts with it
        fs_jar = build_jar(force=force)
        console.print(f"[green]OK[/] local file system classes {escape(fs_jar.name)}: no process per file Spark writes")
    except SetupError as exc:  # only a speed-up, like the archive
        console.print(f"[yellow]WARN[/] {escape(str(exc))}")
    if not console.is_terminal:
        console.print("Writing the JVM's class-data archive (once: about 45 s)…")
    try:
        with console.status("Writing the JVM's class-data archive (Spark starts faster with it)…"):
            archive = build_archive(force=force)
    except SetupError as exc:  # only a speed-up: set-up is complete without it
        console.print(f"[yellow]WARN[/] {escape(str(exc))}")
        return
    console.print(f"[green]OK[/] class-data archive {escape(archive.name)} ({archive.stat().st_size / 1e6:.0f} MB): "
                  "Spark's classes are mapped, not re-read, when a session starts")


@app.command()
def doctor() -> None:
    """Check the machine: Java, Delta jars, data, warehouse, Jupyter kernel — each OK or the fix."""
    from medilake_lab.runtime.doctor import diagnose

    failed = 0
    for ok, what, detail in diagnose():
        failed += not ok
        mark = "[green]OK  [/]" if ok else "[red]FAIL[/]"
        console.print(f"{mark} {escape(what)}: {escape(detail)}")
    raise typer.Exit(1 if failed else 0)


@app.command()
def check(
    lab: str = typer.Argument(..., help="Lab id (01, 02, …) or 'all'."),
    warehouse: Path = WAREHOUSE_OPT,
    data: Path = DATA_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Grade what you built for a lab by inspecting the Delta tables (no Spark needed).

    Only grades of your own warehouse and data (defaults or $MEDILAKE_*) count for `status`.
    """
    from medilake_lab.course import progress
    from medilake_lab.grader.render import print_report
    from medilake_lab.grader.verdicts import graded

    _check_paths(warehouse, data)
    if lab == "all":
        from medilake_lab.contract.labs import all_labs

        reports = [graded(spec.id, warehouse, data) for spec in all_labs()]
    else:
        reports = [graded(lab, warehouse, data)]
    not_recorded = [progress.record_report(report) for report in reports]
    if as_json:
        typer.echo(json.dumps([r.to_dict() | {"recorded": why is None}
                               for r, why in zip(reports, not_recorded, strict=True)], indent=2))
    else:
        for report in reports:
            print_report(report, console)
    for why in dict.fromkeys(w for w in not_recorded if w):  # stderr: --json output stays JSON
        err_console.print(f"[yellow]{escape(why)}[/]", soft_wrap=True)
    raise typer.Exit(0 if all(r.ok for r in reports) else 1)


def _scale(value: float) -> float:
    """typer callback: a usage error (exit 2) for a scale out of range, inf or nan."""
    from medilake_lab.datagen import check_scale
    from medilake_lab.errors import ScaleError

    try:
        return check_scale(value)
    except ScaleError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def generate(
    out: Path = typer.Option(None, "--out", help="Data folder to write (default: the bundled data/ "
                             "or $MEDILAKE_DATA)."),
    scale: float = typer.Option(config.DEFAULT_SCALE, "--scale", callback=_scale,
                                help="Scale factor, 0.01 to 30 (1 ≈ 1,500 patients, 2.2 MB)."),
    seed: int = typer.Option(config.DEFAULT_SEED, "--seed", help="Random seed (same seed+scale → same files)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the bundled data/ folder."),
) -> None:
    """Generate the synthetic EHR raw feeds (six NDJSON feeds in batches + manifest).

    The files are written into a temporary folder and replace the folder's landing/ only when
    complete: a failure leaves the previous data as it was.
    """
    from medilake_lab.contract.feeds import has_raw_files
    from medilake_lab.datagen import generate as run

    target = out or config.data_dir()
    bundled = config.project_root() / "data"
    if not force and target.expanduser().resolve() == bundled.resolve() and has_raw_files(target):
        raise UsageError(f"{target} is the bundled data/ that the labs, their expected outputs and "
                         "the tests are built on; write elsewhere with --out DIR (then use --data DIR), "
                         "or pass --force to replace it")
    try:
        manifest = run(target, scale=scale, seed=seed, progress=True)
    except OSError as exc:  # the folder cannot be created or written: the previous data is untouched
        raise DataError(f"cannot write the raw feeds to {target}: {exc.strerror or exc}; choose a folder "
                        "you can write with --out DIR") from None
    console.print(f"[green]Wrote[/] {manifest['totals']['lines']:,} lines to {escape(str(target))}")


@app.command()
def deliver(
    warehouse: Path = WAREHOUSE_OPT,
    data: Path = DATA_OPT,
    count: int = typer.Option(1, "--count", "-n", min=1, help="Number of batches to deliver."),
    volume: str = typer.Option(None, "--volume", help="A landing volume of its own, <warehouse>/volumes/NAME "
                               "(lab 06: --volume lab06); default: lab 05's, <warehouse>/volumes."),
) -> None:
    """Drop the next CDC batch (004, 005, …) of every feed into a landing volume (lab 05's
    <warehouse>/volumes, or --volume lab06), first copied from the data folder, which is never changed."""
    from rich import box
    from rich.table import Table as RichTable

    from medilake_lab.datagen.delivery import deliver as deliver_batch

    try:
        volume_manifest = config.volume_dir(warehouse, volume) / feeds.LANDING_DIR / feeds.MANIFEST_NAME
    except ValueError as exc:
        raise UsageError(f"--volume: {exc}") from None
    _check_paths(warehouse, data, need_data=data is not None or not volume_manifest.exists())
    for _ in range(count):
        done = deliver_batch(warehouse, data, volume)
        table = RichTable(title=escape(f"batch {done.batch}: changes {done.window[0]} … {done.window[1]} → "
                                       f"{done.volume}"), title_justify="left", box=box.SIMPLE_HEAD,
                          pad_edge=False, collapse_padding=True)
        table.add_column("feed")
        for column in ("batch", "lines", "duplicates", "malformed", "late", "updates", "deletes"):
            table.add_column(column, justify="right")
        for name, c in done.counts.items():
            table.add_row(name, done.batch, f"{c['lines']:,}", *(str(c[k]) for k in (
                "exact_duplicates", "malformed_lines", "late_arriving", "newer_versions", "deletes")))
        console.print(table)


@app.command()
def run(
    lab: str = typer.Argument(..., help="Lab id (01, 02, …) or 'all'."),
    warehouse: Path = WAREHOUSE_OPT,
    data: Path = DATA_OPT,
    learner: bool = typer.Option(False, "--learner", help="Run the learner notebook in labs/ instead of the solution."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace existing tables without asking."),
) -> None:
    """Execute a lab's notebook headlessly (papermill) against the warehouse, then grade it.

    The notebook rewrites the lab's tables: when some already exist, it lists them and asks first
    (--yes: do not ask); they are moved to a backup folder beside the warehouse, not deleted, and
    moved back if the run fails.
    """
    from medilake_lab.contract.labs import all_labs, get_lab
    from medilake_lab.course.workflow import replaced_by_run, run_labs
    from medilake_lab.grader.render import print_report, print_summary
    from medilake_lab.grader.verdicts import graded

    labs = list(all_labs()) if lab == "all" else [get_lab(lab)]
    _check_paths(warehouse, data, need_warehouse=False)
    replaced = replaced_by_run(labs, warehouse)
    if replaced:
        root = config.warehouse_dir(warehouse)
        console.print(f"running lab(s) {', '.join(x.id for x in labs)} replaces these tables/folders of "
                      f"{escape(str(root))}:", soft_wrap=True)
        for item in replaced:
            console.print(f"  lab {item.lab}  {escape(item.name)}", soft_wrap=True)
        console.print("They are moved to a backup folder beside the warehouse (kept; moved back if the "
                      "run fails).", soft_wrap=True)
        if not yes:
            _confirm(f"Replace these {len(replaced)} table(s)/folder(s)?", "nothing changed")
    done, backup = run_labs(labs, warehouse, data, learner=learner, console=console)
    rows = [(graded(spec.id, warehouse, data), seconds, out)
            for spec, (out, seconds) in zip(labs, done, strict=True)]
    for report, _, _ in rows:
        print_report(report, console)
    print_summary(rows, console)
    _print_backup(backup)
    raise typer.Exit(0 if all(report.ok for report, _, _ in rows) else 1)


@app.command()
def status() -> None:
    """Your progress: each lab's grade, last run and quiz score, and what to do next; your mock exams
    (date, score, weakest domains), the next domain to study and the missed questions queued."""
    from rich.table import Table as RichTable

    from medilake_lab.course.workflow import status as lab_status

    rows, (what, command) = lab_status()
    table = RichTable(title="MediLake Lab — progress", title_justify="left")
    for column in ("lab", "title", "grade", "last graded", "quiz best"):
        table.add_column(column)
    for row in rows:
        colour = "green" if row.done else ("red" if row.grade != "—" else "white")
        table.add_row(row.lab.id, row.lab.title, f"[{colour}]{row.grade}[/]", row.last_run,
                      row.quiz)
    console.print(table)
    print_study_status(console)
    console.print(f"[bold]next:[/] {escape(what)}:")
    console.print(f"  [bold]{command}[/]", no_wrap=True, overflow="ignore")


@app.command()
def hint(
    lab: str = typer.Argument(..., help="Lab id."),
    check_id: str = typer.Argument(None, metavar="[CHECK]", help="A check id (default: the first failing one)."),
    warehouse: Path = WAREHOUSE_OPT,
    data: Path = DATA_OPT,
) -> None:
    """Show the next hint for the first failing check (each call reveals a little more)."""
    from medilake_lab.course.workflow import next_hint

    _check_paths(warehouse, data)
    result, lines = next_hint(lab, check_id, warehouse, data)
    if result is None:
        console.print(f"[green]Every lab {lab.zfill(2)} check passes — nothing to hint.[/]")
        return
    console.print(f"[bold]{escape(result.id)}[/] {escape(result.title)} — [bold]{result.status.value}[/]")
    for line in lines:
        console.print(f"  {escape(line)}")


def _confirm(question: str, refused: str) -> None:
    """Ask ``question`` (y/N); without a terminal (or at the end of input) the answer is no.
    On no, print ``refused`` and how to skip the question (--yes), and exit 1."""
    try:
        sure = typer.confirm(question)
    except typer.Abort:  # no terminal, or end of input
        console.print()
        sure = False
    if not sure:
        console.print(f"Aborted: {refused}. Pass --yes to go ahead without being asked.")
        raise typer.Exit(1)


def _print_backup(backup: Path | None) -> None:
    """Say where the tables a command replaced are kept, and how to get one back."""
    if backup:
        console.print(f"your previous tables are kept in {escape(str(backup))} (same paths as in the "
                      "warehouse). To get a table back, move the current one out of the warehouse first, "
                      "then move the backup's folder into its place (never copy one table folder onto "
                      "another: their _delta_log folders would mix); bring a lab's volumes/ back with its "
                      f"tables. Delete {escape(str(backup))} when you no longer need it.", soft_wrap=True)


@app.command()
def reset(
    lab: str = typer.Argument(..., help="Lab id: its tables and every later lab's are removed."),
    warehouse: Path = WAREHOUSE_OPT,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove what lab NN and later labs created; earlier labs' tables stay.

    The tables are moved to a backup folder beside the warehouse, not deleted."""
    from medilake_lab.course.workflow import later_labs
    from medilake_lab.course.workflow import reset as reset_tables

    labs = later_labs(lab)
    _check_paths(warehouse, None, need_data=False)
    if not yes:
        _confirm(f"Remove the tables of lab(s) {', '.join(x.id for x in labs)} "
                 f"from {config.warehouse_dir(warehouse)}?", "nothing removed")
    removed, backup = reset_tables(lab, warehouse)
    console.print(escape(f"removed: {', '.join(removed)}") if removed else "nothing to remove")
    _print_backup(backup)


@app.command()
def catchup(
    lab: str = typer.Argument(..., help="The lab you want to start: earlier labs are built from their solutions."),
    warehouse: Path = WAREHOUSE_OPT,
    data: Path = DATA_OPT,
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace tables without asking."),
) -> None:
    """Build the warehouse lab NN expects by running the earlier solutions headlessly.

    REPLACES YOUR TABLES: the first earlier lab with a failing check is rebuilt from its
    solution, so its tables and folders and those of every later lab (NN included) are removed
    from the warehouse. It lists them and asks first (--yes: do not ask); they are moved to a
    backup folder beside the warehouse, not deleted, and moved back if the rebuild fails.
    """
    from medilake_lab.course.workflow import catchup as run_catchup
    from medilake_lab.course.workflow import plan_catchup

    _check_paths(warehouse, data, need_warehouse=False)
    plan = plan_catchup(lab, warehouse, data)
    for done in plan.complete:
        console.print(f"[green]✓[/] lab {done} already complete")
    if plan.replaced:
        root = config.warehouse_dir(warehouse)
        console.print(f"catchup rebuilds lab(s) {', '.join(x.id for x in plan.rebuild)} from the solutions and "
                      f"replaces these tables/folders of {escape(str(root))}:", soft_wrap=True)
        for item in plan.replaced:
            console.print(f"  lab {item.lab}  {escape(item.name)}  — {escape(plan.why(item))}", soft_wrap=True)
        console.print("They are moved to a backup folder beside the warehouse (kept; moved back if the "
                      "rebuild fails).", soft_wrap=True)
        if not yes:
            _confirm(f"Replace these {len(plan.replaced)} table(s)/folder(s)?", "nothing changed")
    ran, backup = run_catchup(plan, warehouse, data, console=console)
    console.print(f"[green]Ready for lab {plan.target.id}[/]" +
                  (f" (ran solutions {', '.join(ran)})" if ran else " (nothing to do)"))
    _print_backup(backup)


@dev_app.command("build-labs")
def build_labs(
    check_only: bool = typer.Option(False, "--check", help="Only report whether labs/ is up to date."),
    refresh_outputs: bool = typer.Option(
        False, "--refresh-outputs", help="First execute the solutions (minutes) and store the outputs "
        "of their # NBVAL_CHECK_OUTPUT cells, the reference the test suite compares with."),
    data: Path = DATA_OPT,
) -> None:
    """Write labs/ from solutions/, replacing BEGIN/END SOLUTION regions with TODO stubs (notebooks and
    the .py/.sql files of pipeline projects)."""
    from medilake_lab.course.notebooks import build_learner_notebooks, refresh_reference_outputs
    from medilake_lab.course.scaffold import build_learner_projects

    if refresh_outputs:
        changed = refresh_reference_outputs(data)
        console.print(f"reference outputs {'changed in ' + ', '.join(changed) if changed else 'unchanged'}")
    stale = build_learner_notebooks(write=not check_only) + build_learner_projects(write=not check_only)
    if check_only and stale:
        console.print(f"[red]out of date:[/] {', '.join(stale)} — run `medilake_lab dev build-labs`")
        raise typer.Exit(1)
    console.print(f"[green]labs/ up to date[/] ({'checked' if check_only else 'written'})")


@dev_app.command("check")
def dev_check(
    data: Path = DATA_OPT,
    static: bool = typer.Option(False, "--static", help="Skip executing notebooks."),
) -> None:
    """Self-test: lab list and lab files agree (--static: only this); solutions pass, untouched labs fail."""
    from medilake_lab.course import devcheck

    problems = devcheck.static_problems() if static else devcheck.run(data, console)
    for warning in devcheck.quiz_bias(console) + devcheck.quiz_coverage(console):
        console.print(f"[yellow]![/] {escape(warning)}")
    for problem in problems:
        console.print(f"[red]✗[/] {escape(problem)}")
    if problems:
        raise typer.Exit(1)
    console.print("[green]dev check passed[/]")


@dev_app.command("new-lab")
def dev_new_lab(
    lab: str = typer.Argument(..., help="The new lab's id, after the last listed one (e.g. 05)."),
    title: str = typer.Argument(..., help='Its title, e.g. "Streaming ingestion".'),
) -> None:
    """Scaffold a lab: labs.yaml entry, solution and learner notebooks, checks, quiz bank, test."""
    from medilake_lab.course.scaffold import new_lab

    for path in new_lab(lab, title):
        console.print(f"[green]wrote[/] {escape(str(path))}")
    console.print("next: `medilake_lab dev check --static` lists what is left to write")


@app.command()
def pipeline(
    action: str = typer.Argument(..., help="run (an update) or dry-run (validate the graph, write nothing)."),
    spec: Path = typer.Argument(None, help="The spark-pipeline.yml or its project folder (default: here)."),
    full_refresh: bool = typer.Option(False, "--full-refresh",
                                      help="Reset the streaming tables and their checkpoints, recompute all."),
    warehouse: Path = WAREHOUSE_OPT,
) -> None:
    """Run a declarative pipeline (lab 06) with spark-pipelines, the Delta jars and the warehouse."""
    from medilake_lab.runtime.pipelines import load_pipeline, run_pipeline

    _check_paths(warehouse, None, need_data=False)
    project = load_pipeline(spec, warehouse)
    console.print(f"pipeline [bold]{escape(project.name)}[/] {action}"
                  f"{' (full refresh)' if full_refresh else ''}: {escape(str(project.spec))} → "
                  f"{escape(str(project.warehouse))}", soft_wrap=True)
    done = run_pipeline(project, action, full_refresh,
                        echo=lambda at, message: console.print(f"  {at}  {escape(message)}", soft_wrap=True))
    console.print(f"[green]done[/] in {done.seconds:.0f} s; log: {escape(str(done.log))}", soft_wrap=True)


import_app = typer.Typer(help="Convert external data into the kit's raw feeds.",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("synthea")
def import_synthea_command(
    src: Path = typer.Argument(..., exists=True, file_okay=False, help="Synthea CSV output folder (output/csv)."),
    out: Path = typer.Option(..., "--out", help="Data folder to write (landing/ + manifest); use it with --data."),
) -> None:
    """Convert a Synthea CSV export into the six raw feeds (batches + manifest); docs/synthea.md."""
    from rich.table import Table

    from medilake_lab.importers import import_synthea

    if out.expanduser().resolve() == (config.project_root() / "data").resolve():
        raise UsageError("--out is the bundled data/ folder; write the import to another folder")
    try:
        info = import_synthea(src, out)["import"]
    except OSError as exc:  # a CSV that cannot be read, or an --out folder that cannot be written
        raise DataError(f"cannot import {src} into {out}: {exc}") from None
    table = Table(title=escape(f"Synthea → {out}"))
    for column in ("feed", "rows", "unmapped codes"):
        table.add_column(column, justify="left" if column == "feed" else "right")
    unmapped = {"diagnoses": "ICD-10-CM", "procedures": "CPT"}
    for feed, rows in info["rows"].items():
        system = unmapped.get(feed)
        table.add_row(feed, f"{rows:,}", f"{info['unmapped_codes'][system]['rows']:,} ({system})"
                      if system else "")
    console.print(table)
    outside = ", ".join(f"{s} {n:,}" for s, n in info["not_in_code_tables"].items() if n)
    if outside:
        console.print(f"codes not in the kit's code tables (silver rejects them): {outside}")
    dropped = sum(info["dropped_observations"].values())
    console.print(f"observations not used as lab results: {dropped:,}; "
                  f"use it with [bold]--data {escape(str(out))}[/] (labs: data_dir parameter)")


register_quiz_commands(app)  # quiz, exam: imported above, so a broken import fails loudly


def main() -> None:  # pragma: no cover - entry point
    app()
