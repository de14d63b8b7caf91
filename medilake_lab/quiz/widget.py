"""Notebook renderer (ipywidgets): one card per question, a Check button, a running score.

ipywidgets is imported only when :func:`show_quiz` runs, so the rest of the kit works without
it; a missing install raises :class:`WidgetUnavailableError` naming ``pip install ipywidgets``.
"""

from __future__ import annotations

import html
import importlib
import os
from types import ModuleType
from typing import Any

from medilake_lab.course import progress
from medilake_lab.errors import ProgressFileError, WidgetUnavailableError
from medilake_lab.quiz.loader import load_bank
from medilake_lab.quiz.session import (
    Outcome,
    ShownQuestion,
    Tally,
    answered,
    build_quiz,
    grade,
    is_partial_quiz,
    normalise_lab,
)

#: Shown when a notebook asks for the widget renderer without ipywidgets installed.
MISSING_IPYWIDGETS = (
    "The notebook quiz needs ipywidgets, which is not installed in this environment. "
    "Run `pip install ipywidgets` (or `pip install -e .` in the repo) and restart the kernel; "
    "the terminal quiz works without it: `medilake_lab quiz {lab}`."
)


def _ipywidgets(lab: str) -> ModuleType:
    try:
        return importlib.import_module("ipywidgets")
    except ImportError as exc:
        raise WidgetUnavailableError(MISSING_IPYWIDGETS.format(lab=lab)) from exc


def _feedback_html(outcome: Outcome) -> str:
    shown, q = outcome.shown, outcome.shown.question
    right = ", ".join(shown.correct)
    head = ("<b style='color:green'>Correct</b>" if outcome.correct
            else f"<b style='color:#b00'>Not quite</b>: the answer is {right}.")
    parts = [head, f"<p><b>Why:</b> {html.escape(q.explanation.strip())}</p>"]
    for letter in outcome.wrong_choices:
        reason = q.distractors[shown.to_original(letter)]
        parts.append(f"<p><b>Why {letter} is wrong:</b> {html.escape(reason.strip())}</p>")
    ref = html.escape(q.reference)
    link = f"<a href='{ref}' target='_blank'>{ref}</a>" if q.reference.startswith("http") else ref
    parts.append(f"<p style='color:#666'>Read more: {link}</p>")
    return "".join(parts)


class _Card:
    """One question's widgets and its check logic."""

    def __init__(self, w: ModuleType, shown: ShownQuestion, number: int, total: int,
                 on_checked: Any) -> None:
        self.shown, self.on_checked = shown, on_checked
        q = shown.question
        labels = [f"{letter}. {shown.option_text(letter)}" for letter in shown.letters]
        layout = w.Layout(width="auto")
        if shown.choose == 1:
            self.radio = w.RadioButtons(options=labels, value=None, layout=layout)
            self.boxes: list[Any] = []
            picker = self.radio
        else:
            self.radio = None
            self.boxes = [w.Checkbox(value=False, description=label, indent=False,
                                     layout=layout) for label in labels]
            picker = w.VBox(self.boxes)
        choose = (f" <i>(Choose {shown.choose}.)</i>"
                  if shown.choose > 1 and "(choose" not in q.stem.lower() else "")
        header = w.HTML(f"<b>Question {number}/{total}</b> · {html.escape(q.id)} · "
                        f"{q.difficulty}<p>{html.escape(q.stem.strip())}{choose}</p>")
        self.button = w.Button(description="Check", button_style="primary")
        self.feedback = w.HTML("")
        self.button.on_click(self._check)
        self.box = w.VBox([header, picker, self.button, self.feedback],
                          layout=w.Layout(border="1px solid #ddd", padding="8px",
                                          margin="0 0 12px 0"))

    def chosen(self) -> list[str]:
        """Display letters currently selected."""
        letters = self.shown.letters
        if self.radio is not None:
            return [] if self.radio.index is None else [letters[self.radio.index]]
        return [letters[i] for i, box in enumerate(self.boxes) if box.value]

    def _check(self, _button: Any = None) -> None:
        picked = self.chosen()
        if len(picked) != self.shown.choose:
            need = self.shown.choose
            self.feedback.value = (f"<span style='color:#a60'>Pick exactly {need} "
                                   f"option{'s' if need > 1 else ''} first.</span>")
            return
        outcome = grade(self.shown, picked)
        self.feedback.value = _feedback_html(outcome)
        self.button.disabled = True
        for widget in ([self.radio] if self.radio is not None else self.boxes):
            widget.disabled = True
        self.on_checked(outcome)


def show_quiz(lab: str, bank_dir: str | os.PathLike[str] | None = None,
              shuffle_seed: int | None = None, count: int | None = None,
              state: str | os.PathLike[str] | None = None, display: bool = True) -> Any | None:
    """Show a lab quiz in a notebook: radio buttons or checkboxes, Check, feedback, score.

    Parameters
    ----------
    lab : str
        A lab id from ``labs.yaml`` (``"01"``, …) or ``"dbx"``.
    bank_dir : str, PathLike or None
        Bank folder; default ``<project root>/quizzes``.
    shuffle_seed : int or None
        Fix the question and option order.
    count : int or None
        Ask only this many questions.
    state : str, PathLike or None
        Learner-state folder for the progress file.
    display : bool
        Display the widget now and return None (so a cell ending in ``show_quiz("01")`` shows it
        once, and ``quiz = show_quiz("01")`` works too); False: only build it and return it.

    Returns
    -------
    None or ipywidgets.VBox
        None when displayed; else the quiz, whose ``cards`` attribute holds one object per question
        (``button``, ``radio``/``boxes``, ``feedback``). Each answer goes to the learner's answer
        history as it is checked (:func:`medilake_lab.course.progress.record_answers`), the score
        with the last one (:func:`~medilake_lab.course.progress.record_quiz`, as practice when
        ``count`` leaves questions out); when the progress file cannot be read or written, the
        score line says why instead.

    Raises
    ------
    WidgetUnavailableError
        ipywidgets is not installed (the message says ``pip install ipywidgets``).
    """
    lab_id = normalise_lab(lab)
    w = _ipywidgets(lab_id)
    questions, _ = load_bank(bank_dir)
    shown_all = build_quiz(questions, lab_id, seed=shuffle_seed, count=count)
    tally = Tally()
    total = len(shown_all)
    practice = is_partial_quiz(questions, lab_id, shown_all)
    score = w.HTML(f"<b>Score: 0/0</b> · {total} questions")

    def on_checked(outcome: Outcome) -> None:
        tally.add(outcome)
        done = tally.total == total
        checked = answered([outcome])
        try:  # each answer as it is checked; the score with the last one
            if done:
                progress.record_quiz(lab_id, tally.score, total, state=state, answers=checked,
                                     practice=practice)
            else:
                progress.record_answers(checked, state=state)
        except ProgressFileError as exc:  # the score stays on screen; say why it is not saved
            score.value = (f"<b>Score: {tally.score}/{tally.total}</b> · <b>not saved</b>: "
                           f"{html.escape(str(exc))}")
            return
        kind = " as practice (part of the quiz)" if practice else ""
        score.value = (f"<b>Score: {tally.score}/{tally.total}</b> · "
                       + (f"finished, saved to your progress{kind}" if done
                          else f"{total - tally.total} to go · each answer is saved as it is checked"))

    cards = [_Card(w, shown, i, total, on_checked) for i, shown in enumerate(shown_all, 1)]
    title = w.HTML(f"<h3>Lab {html.escape(lab_id)} quiz</h3>")
    root = w.VBox([title, score, *[c.box for c in cards]])
    root.cards = cards  # type: ignore[attr-defined]
    root.tally = tally  # type: ignore[attr-defined]
    if not display:
        return root
    from IPython.display import display as ipy_display

    ipy_display(root)
    return None
