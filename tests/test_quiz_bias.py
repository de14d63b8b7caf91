"""Answer-length give-aways (issue 16): the measurement, and the banks meeting its limits (fast: no JVM).

Every bank file keeps the key-is-longest share ≤ 35 % and no key ≥ 1.3× its longest distractor; on
the whole bank, picking the longest or the wordiest option scores ≤ 40 % on average over 200 seeded
mocks of each exam. The test plays both strategies itself, from the option texts of the mock exams
``build_exam`` draws, and checks that :mod:`medilake_lab.quiz.bias` (what ``dev check`` and
``benchmarks/quiz_bias.py`` print) finds the same means.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from medilake_lab.course import devcheck
from medilake_lab.quiz import Question, build_exam, load_bank
from medilake_lab.quiz.bias import (
    MOCKS,
    RATIO_LIMIT,
    SHARE_LIMIT,
    STRATEGY_LIMIT,
    bias_report,
    flagged,
    key_length,
    key_longest_share,
    pick,
    strategy_scores,
)
from medilake_lab.quiz.loader import bank_files, load_questions
from medilake_lab.quiz.session import EXAMS, shuffle_options

ROOT = Path(__file__).resolve().parent.parent
BANK_DIR = ROOT / "quizzes"


@pytest.fixture(scope="module")
def bank():
    return load_bank(BANK_DIR)


def _question(options: dict[str, str], answer: str, qid: str = "T-001") -> Question:
    keys = answer.split(",")
    return Question.model_validate({
        "id": qid, "lab": "01", "objectives": ["DEA-2.1"], "difficulty": "easy",
        "stem": "Which option is the right one?", "options": options, "answer": answer,
        "multiple": len(keys) > 1, "explanation": "Because it is.",
        "distractors": {letter: "Not this one." for letter in options if letter not in keys},
        "reference": "https://docs.delta.io/",
    })


# ---------------------------------------------------------------- the measurement

def test_ratio_is_longest_key_over_longest_distractor():
    q = _question({"A": "x" * 26, "B": "y" * 20, "C": "z" * 10}, "A")
    measured = key_length(q)
    assert measured.ratio == pytest.approx(26 / 20) and measured.key_longest
    assert flagged([q]) == [measured]
    shorter = _question({"A": "x" * 25, "B": "y" * 20, "C": "z" * 10}, "A")
    assert flagged([shorter]) == [] and key_length(shorter).ratio < RATIO_LIMIT


def test_share_counts_single_answer_questions_whose_key_is_strictly_longest():
    longest = _question({"A": "long key text", "B": "short"}, "A", "T-1")
    tie = _question({"A": "same", "B": "size"}, "B", "T-2")
    shortest = _question({"A": "key", "B": "a longer distractor"}, "A", "T-3")
    multi = _question({"A": "key one long", "B": "key two long", "C": "no"}, "A,B", "T-4")
    assert key_longest_share([longest, tie, shortest, multi]) == pytest.approx(1 / 3)


def test_strategy_picks_the_n_longest_or_wordiest_shown_options():
    q = _question({"A": "a a a a", "B": "bbbbbbbbbbbb", "C": "c", "D": "dd dd"}, "A,B")
    shown = shuffle_options(q, None)
    assert sorted(pick(shown, len)) == ["A", "B"]
    assert sorted(pick(shown, lambda text: len(text.split()))) == ["A", "D"]


def test_strategies_score_all_when_the_key_is_longest_and_nothing_when_shortest(bank):
    _, catalogue = bank
    give_away = [_question({"A": f"{i} right answer spelt out", "B": "wrong", "C": "no"}, "A", f"T-{i}")
                 for i in range(12)]
    fair = [_question({"A": f"k{i}", "B": "a longer wrong one", "C": "another long wrong one"}, "A",
                      f"T-{i}") for i in range(12)]
    assert all(s == [1.0] * 5 for s in strategy_scores(give_away, catalogue, "associate", 5).values())
    assert all(s == [0.0] * 5 for s in strategy_scores(fair, catalogue, "associate", 5).values())
    report = bias_report(give_away, catalogue, mocks=3)
    assert "professional" not in report.means  # no question counts towards it
    assert any("limit 35%" in w for w in report.warnings()) and len(report.flagged) == 12


# ---------------------------------------------------------------- the banks

def _own_strategy_means(questions: list[Question], catalogue) -> dict[str, dict[str, float]]:
    """Play both strategies from the shown option texts, independently of bias.pick."""
    measures = {"longest": lambda t: len(t.strip()), "most words": lambda t: len(t.split())}
    means: dict[str, dict[str, float]] = {}
    for exam in EXAMS:
        scores: dict[str, list[float]] = {name: [] for name in measures}
        for seed in range(MOCKS):
            shown = build_exam(questions, catalogue, exam, seed=seed).shown
            for name, measure in measures.items():
                right = 0
                for s in shown:
                    lengths = [measure(s.option_text(letter)) for letter in s.letters]
                    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
                    right += sorted(s.letters[i] for i in order[: s.choose]) == s.correct
                scores[name].append(right / len(shown))
        means[exam] = {name: statistics.fmean(values) for name, values in scores.items()}
    return means


def test_the_limits_are_the_ones_the_design_sets():
    """The tests below use the module's limits; they must stay DESIGN.md §8's and issue 16's
    numbers (a key longest in at most 35 % of questions, no key 1.3× its longest distractor, blind
    length strategies at most 40 % on mocks), so loosening a constant fails here."""
    assert (SHARE_LIMIT, RATIO_LIMIT, STRATEGY_LIMIT) == (0.35, 1.3, 0.40)


@pytest.mark.parametrize("name", [p.name for p in bank_files(BANK_DIR)])
def test_bank_file_keys_do_not_stand_out_by_length(bank, name):
    questions = load_questions(BANK_DIR / name, bank.catalogue.objective_ids())
    long_keys = [f"{k.id} ({k.ratio:.2f}×)" for k in flagged(questions)]
    assert not long_keys, f"{name}: keys ≥ {RATIO_LIMIT}× their longest distractor: {', '.join(long_keys)}"
    share = key_longest_share(questions)
    assert share <= SHARE_LIMIT, f"{name}: the key is the longest option in {share:.0%} of questions"


def _assert_strategies_fail(questions: list[Question], catalogue) -> None:
    means = _own_strategy_means(questions, catalogue)
    reported = bias_report(questions, catalogue).means
    assert reported.keys() == means.keys()
    assert all(reported[exam] == pytest.approx(by) for exam, by in means.items())
    high = [f"{exam} {name} {m:.0%}" for exam, by in means.items() for name, m in by.items()
            if m > STRATEGY_LIMIT]
    assert not high, f"blind strategies pass the mocks: {', '.join(high)}"


def test_whole_bank_cannot_be_passed_by_length(bank):
    questions, catalogue = bank
    assert key_longest_share(questions) <= SHARE_LIMIT
    _assert_strategies_fail(questions, catalogue)


# ---------------------------------------------------------------- where the figures are printed

def test_dev_check_prints_the_figures_and_warns_per_flagged_key(tmp_path):
    with open(tmp_path / "out.txt", "w") as out:
        warnings = devcheck.quiz_bias(Console(file=out, width=200))
    printed = (tmp_path / "out.txt").read_text()
    assert "key is the longest option in" in printed and "associate: mean mock score" in printed
    questions, _ = load_bank(BANK_DIR)
    ids = [k.id for k in flagged(questions)]
    assert all(qid in " ".join(warnings) for qid in ids)
    assert bool(ids) == any("longest distractor" in w for w in warnings)


def test_benchmark_prints_a_row_per_bank_file():
    out = subprocess.run([sys.executable, "quiz_bias.py", "--mocks", "2", "--no-write"], cwd=ROOT / "benchmarks",
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert all(f"| {p.name} |" in out.stdout for p in bank_files(BANK_DIR)) and "| all banks |" in out.stdout
