"""Draw the MediLake architecture (raw feeds → bronze → silver → gold) from the kit's own metadata
(:func:`medilake_lab.course.architecture.plot_architecture`, which says where each part comes from).

Usage: ``.venv/bin/python docs/make_architecture.py [OUT.png]`` (default ``docs/architecture.png``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from medilake_lab.course.architecture import plot_architecture  # noqa: E402


def draw(out: Path) -> Path:
    """Render the whole diagram to ``out`` (PNG) and return the path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_architecture().savefig(out, dpi=110, metadata={"Software": None})
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("architecture.png")
    print(f"wrote {draw(target)}")
