"""Show grade reports in the terminal (rich) and in notebooks.

Everything taken from a report (ids, titles, findings, hints, rules, paths) can hold text that
looks like rich markup (a ``[/]`` in a path or a data value): it is passed through
:func:`rich.markup.escape` before rendering, so it is shown as it is and never raises
``MarkupError``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from medilake_lab.grader.model import LabReport, Status

STYLE = {Status.PASS: "bold green", Status.FAIL: "bold red", Status.SKIP: "yellow"}


def print_report(report: LabReport, console: Console | None = None) -> None:
    """Print one lab's results: a table of checks headed by the warehouse and data folder graded,
    then hint and exam rule for each failure."""
    console = console or Console()
    title = (f"Lab {escape(report.lab)} — {escape(report.title)}\n[dim]warehouse {escape(str(report.warehouse))}"
             f"\ndata      {escape(str(report.data))}[/]")
    table = RichTable(title=title, title_justify="left", show_lines=False, expand=True)
    table.add_column("check", style="cyan", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("finding")
    for r in report.results:
        table.add_row(escape(r.id), f"[{STYLE[r.status]}]{r.status.value}[/]", escape(r.finding))
    console.print(table)
    for r in report.results:
        if r.status is Status.FAIL:
            console.print(f"[bold red]✗ {escape(r.id)}[/] {escape(r.title)}")
            console.print(f"  [bold]hint:[/] {escape(r.hint)}")
            console.print(f"  [bold]exam rule:[/] {escape(r.rule)}")
    colour = "green" if report.ok else "red"
    console.print(f"[bold {colour}]Lab {escape(report.lab)}: {report.passed}/{report.total} checks "
                  f"passed[/]\n")


def print_summary(rows: list[tuple[LabReport, float, Path]], console: Console | None = None) -> None:
    """One line per executed lab: grade, run time (seconds) and the executed notebook's path."""
    console = console or Console()
    table = RichTable(title="Grade report", title_justify="left")
    for column in ("lab", "title", "checks", "run time", "executed notebook"):
        table.add_column(column)
    for report, seconds, path in rows:
        colour = "green" if report.ok else "red"
        table.add_row(escape(report.lab), escape(report.title), f"[{colour}]{report.passed}/{report.total}[/]",
                      f"{seconds:.0f} s", escape(str(path)))
    console.print(table)


def show(report: LabReport) -> None:
    """Display a report inside a notebook (rich renders to the cell output)."""
    print_report(report, Console(force_jupyter=False, width=110))
