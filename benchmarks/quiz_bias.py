"""Quiz answer-length bias: can a learner pass the mock exams by picking the longest option?

Prints, for the whole bank, the lab banks together (``lab: NN``) and each bank file: the
key-is-longest share (single-answer questions), the mean mock score of the "longest option" and
"most words" strategies on the seeded mock exams of each exam (seeds 0 … mocks-1, drawn as
``medilake_lab exam`` draws them), and the number of keys ≥ 1.3× their longest distractor.
Measured by :mod:`medilake_lab.quiz.bias`; the issue-16 limits are a share ≤ 35 % and strategy
means ≤ 40 %.

Usage::

    python benchmarks/quiz_bias.py                  # 200 mocks per exam, updates RESULTS.md
    python benchmarks/quiz_bias.py --mocks 50 --no-write --flagged
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medilake_lab.quiz.bias import MOCKS, bias_report
from medilake_lab.quiz.loader import bank_files, default_bank_dir, load_bank, load_questions
from medilake_lab.quiz.session import EXAMS

_COLUMNS = ("bank", "questions", "key longest", *(f"{e} {s}" for e in EXAMS for s in ("longest", "words")),
            "keys ≥ 1.3×")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mocks", type=int, default=MOCKS, help="mock exams per exam (default %(default)s)")
    parser.add_argument("--bank-dir", type=Path, default=None, help="bank folder (default: quizzes/)")
    parser.add_argument("--flagged", action="store_true", help="also list the flagged question ids")
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="do not update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    folder = args.bank_dir or default_bank_dir()
    questions, catalogue = load_bank(folder)
    banks = [("all banks", questions), ("lab banks", [q for q in questions if q.lab is not None])]
    banks += [(f.name, load_questions(f, catalogue.objective_ids())) for f in bank_files(folder)]
    body = "| " + " | ".join(_COLUMNS) + " |\n|" + "---|" * len(_COLUMNS) + "\n"
    for name, qs in banks:
        report = bias_report(qs, catalogue, args.mocks)
        means = [f"{report.means[e][s]:.0%}" if e in report.means else "–"
                 for e in EXAMS for s in ("longest", "most words")]
        row = [name, str(report.questions), f"{report.share:.0%}", *means, str(len(report.flagged))]
        body += "| " + " | ".join(row) + " |\n"
        if args.flagged and report.flagged and name.endswith(".yaml"):
            print(f"{name}: " + ", ".join(f"{k.id} {k.ratio:.2f}×" for k in report.flagged))
    print(f"{args.mocks} seeded mocks per exam\n\n{body}")
    if args.write:
        from common import write_section

        write_section("Quiz answer-length bias", body + f"\n{args.mocks} seeded mocks per exam "
                      "(`python benchmarks/quiz_bias.py`); limits: key longest ≤ 35 %, strategies ≤ 40 %.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
