"""Show grade reports in the terminal (rich) and in notebooks (an HTML table).

Everything taken from a report (ids, titles, findings, hints, rules, paths) can hold text that
looks like rich markup (a ``[/]`` in a path or a data value): it is passed through
:func:`rich.markup.escape` before rendering, so it is shown as it is and never raises
``MarkupError``."""

from __future__ import annotations

import html
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


#: Status cell colours of the notebook table
COLOUR = {Status.PASS: "#1a7f37", Status.FAIL: "#cf222e", Status.SKIP: "#9a6700"}


def report_html(report: LabReport) -> str:
    """One lab's results as an HTML fragment for a notebook: the warehouse and data folder graded, a
    table of checks (check, status, finding), then hint and exam rule for each failure and the total.
    Every text from the report is HTML-escaped."""
    rows = "".join(
        f"<tr><td style='text-align:left'><code>{html.escape(r.id)}</code></td>"
        f"<td style='text-align:left;color:{COLOUR[r.status]};font-weight:bold'>{r.status.value}</td>"
        f"<td style='text-align:left'>{html.escape(r.finding)}</td></tr>" for r in report.results)
    failures = "".join(
        f"<li><b>{html.escape(r.id)}</b> {html.escape(r.title)}<br><b>hint:</b> {html.escape(r.hint)}"
        f"<br><b>exam rule:</b> {html.escape(r.rule)}</li>" for r in report.results if r.status is Status.FAIL)
    colour = COLOUR[Status.PASS if report.ok else Status.FAIL]
    return (f"<div class='medilake-grade'><h3>Lab {html.escape(report.lab)} — {html.escape(report.title)}</h3>"
            f"<p style='color:#666'>warehouse {html.escape(str(report.warehouse))}<br>"
            f"data {html.escape(str(report.data))}</p>"
            "<table><thead><tr><th style='text-align:left'>check</th><th style='text-align:left'>status</th>"
            f"<th style='text-align:left'>finding</th></tr></thead><tbody>{rows}</tbody></table>"
            + (f"<ul>{failures}</ul>" if failures else "")
            + f"<p style='color:{colour};font-weight:bold'>Lab {html.escape(report.lab)}: "
              f"{report.passed}/{report.total} checks passed</p></div>")


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell), False in a terminal or plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return type(get_ipython()).__name__ == "ZMQInteractiveShell"


def show(report: LabReport) -> None:
    """Display a report: an HTML table in a notebook (:func:`report_html`), rich's table elsewhere."""
    if _in_notebook():
        from IPython.display import HTML, display

        display(HTML(report_html(report)))
    else:
        print_report(report, Console(force_jupyter=False, width=110))
