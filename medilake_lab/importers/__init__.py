"""Importers: external data formats → the kit's six raw feeds (``landing/`` layout + manifest).

- :func:`import_synthea`: a Synthea CSV export (see :mod:`medilake_lab.importers.synthea`).
"""

from __future__ import annotations

from medilake_lab.errors import SyntheaFormatError
from medilake_lab.importers.synthea import import_synthea

__all__ = ["SyntheaFormatError", "import_synthea"]
