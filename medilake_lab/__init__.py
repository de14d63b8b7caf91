"""MediLake Lab: an offline Delta Lake exam-prep lab kit (bronze → silver → gold EHR lakehouse)."""

from __future__ import annotations

__version__ = "0.1.0"
