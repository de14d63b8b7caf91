"""Answer-length give-aways: does the keyed option stand out by its length?

A bank is gameable when the key is the longest or wordiest option. This module measures that, in
one place, for ``medilake_lab dev check``, ``benchmarks/quiz_bias.py`` and the tests:

* per question, the **key-length ratio**: characters of the longest key divided by characters of
  the longest distractor (≥ :data:`RATIO_LIMIT` is flagged), and whether a key is the longest option;
* per bank, the **key-is-longest share** over single-answer questions (the key strictly longer
  than every distractor; a tie is no give-away);
* two **blind strategies** played on seeded mock exams drawn by
  :func:`~medilake_lab.quiz.session.build_exam`: "pick the longest option" (characters) and
  "pick the option with the most words". On a multiple-answer question a strategy picks the N
  longest (or wordiest) options, N being the number of keys, which the exam tells the learner.
  Ties go to the option shown first, so the option shuffle decides them.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medilake_lab.quiz.model import Catalogue, Question
from medilake_lab.quiz.session import EXAMS, ShownQuestion, build_exam, grade

#: A key this many times as long as the longest distractor (characters) is flagged.
RATIO_LIMIT = 1.3
#: Thresholds of issue 16: the bank's key-is-longest share and a blind strategy's mean mock score.
SHARE_LIMIT = 0.35
STRATEGY_LIMIT = 0.40
#: Mock exams per exam a strategy is played on (seeds 0 … MOCKS-1).
MOCKS = 200

#: Scores one option text; a strategy picks the options with the highest scores.
Measure = Callable[[str], int]


def characters(text: str) -> int:
    """Length of an option in characters (surrounding whitespace ignored)."""
    return len(text.strip())


def words(text: str) -> int:
    """Number of whitespace-separated words of an option."""
    return len(text.split())


#: The strategies played, by name.
STRATEGIES: dict[str, Measure] = {"longest": characters, "most words": words}


@dataclass(frozen=True)
class KeyLength:
    """How one question's key compares in length with its distractors.

    Attributes
    ----------
    id : str
        The question id.
    ratio : float
        Characters of the longest key / characters of the longest distractor.
    key_longest : bool
        True when a key is longer (characters) than every distractor.
    multiple : bool
        True for a multiple-answer question.
    """

    id: str
    ratio: float
    key_longest: bool
    multiple: bool


def key_length(question: Question) -> KeyLength:
    """Measure one question (see :class:`KeyLength`)."""
    key = max(characters(question.options[letter]) for letter in question.answer)
    distractor = max(characters(question.options[letter]) for letter in question.wrong_letters)
    return KeyLength(question.id, key / distractor, key > distractor, question.multiple)


def key_longest_share(questions: Sequence[Question]) -> float:
    """Share (0–1) of single-answer questions whose key is the longest option; 0.0 when none."""
    single = [key_length(q) for q in questions if not q.multiple]
    return sum(k.key_longest for k in single) / len(single) if single else 0.0


def flagged(questions: Sequence[Question], limit: float = RATIO_LIMIT) -> list[KeyLength]:
    """The questions whose key is ≥ ``limit`` × their longest distractor, in bank order."""
    return [k for k in map(key_length, questions) if k.ratio >= limit]


def pick(shown: ShownQuestion, measure: Measure) -> list[str]:
    """The display letters a blind strategy chooses: the ``shown.choose`` options scoring highest
    by ``measure`` (ties: the option shown first)."""
    ranked = sorted(shown.letters, key=lambda letter: -measure(shown.option_text(letter)))
    return ranked[: shown.choose]


def strategy_scores(questions: Sequence[Question], catalogue: Catalogue, exam: str,
                    mocks: int = MOCKS) -> dict[str, list[float]]:
    """Play every strategy of :data:`STRATEGIES` on ``mocks`` mock exams (seeds 0 … mocks-1).

    Returns
    -------
    dict[str, list[float]]
        Strategy name → one score (0–1, share of questions right) per mock; a mock that draws
        no question (no question of the bank counts towards ``exam``) is left out.

    Raises
    ------
    QuizUsageError
        ``exam`` is not associate or professional.
    """
    scores: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    for seed in range(mocks):
        plan = build_exam(questions, catalogue, exam, seed=seed)
        if not plan.shown:
            continue
        for name, measure in STRATEGIES.items():
            right = sum(grade(s, pick(s, measure)).correct for s in plan.shown)
            scores[name].append(right / len(plan.shown))
    return scores


@dataclass(frozen=True)
class BiasReport:
    """The length figures of a set of questions.

    Attributes
    ----------
    questions : int
        How many questions were measured.
    share : float
        Key-is-longest share of the single-answer questions (0–1).
    means : dict[str, dict[str, float]]
        Exam → strategy name → mean mock score (0–1); an exam with no eligible question is absent.
    flagged : list[KeyLength]
        Questions whose key is ≥ :data:`RATIO_LIMIT` × their longest distractor.
    """

    questions: int
    share: float
    means: dict[str, dict[str, float]]
    flagged: list[KeyLength]

    def warnings(self) -> list[str]:
        """One line per threshold broken (share, strategy means, flagged keys); empty when none."""
        out = []
        if self.share > SHARE_LIMIT:
            out.append(f"the key is the longest option in {self.share:.0%} of single-answer questions "
                       f"(limit {SHARE_LIMIT:.0%}): lengthen the distractors or tighten the keys")
        out += [f"{exam} mocks: picking the {name} option scores {mean:.0%} on average (limit "
                f"{STRATEGY_LIMIT:.0%})" for exam, by in self.means.items()
                for name, mean in by.items() if mean > STRATEGY_LIMIT]
        if self.flagged:
            out.append(f"{len(self.flagged)} key(s) ≥ {RATIO_LIMIT}× their longest distractor: "
                       + ", ".join(f"{k.id} ({k.ratio:.2f}×)" for k in self.flagged))
        return out

    def summary(self) -> list[str]:
        """The figures as lines of text (share, one line per exam, flagged count)."""
        lines = [f"{self.questions} questions; key is the longest option in {self.share:.0%} of the "
                 "single-answer ones"]
        lines += [f"{exam}: mean mock score picking " + ", ".join(f"the {name} option {m:.0%}"
                                                                 for name, m in by.items())
                  for exam, by in self.means.items()]
        lines.append(f"keys ≥ {RATIO_LIMIT}× their longest distractor: {len(self.flagged)}")
        return lines


def bias_report(questions: Sequence[Question], catalogue: Catalogue, mocks: int = MOCKS) -> BiasReport:
    """Measure ``questions``: share, strategy means per exam over ``mocks`` seeded mocks, flagged keys."""
    means: dict[str, dict[str, float]] = {}
    for exam in EXAMS:
        scores = strategy_scores(questions, catalogue, exam, mocks)
        if all(scores.values()):
            means[exam] = {name: statistics.fmean(values) for name, values in scores.items()}
    return BiasReport(len(questions), key_longest_share(questions), means, flagged(questions))
