"""One root exception for the kit, and the specific errors callers can catch."""

from __future__ import annotations


class MediLakeError(Exception):
    """Root of every error this package raises on purpose."""


class SetupError(MediLakeError):
    """The machine is not ready: Java missing or too old, Delta jars not resolved."""


class DataError(MediLakeError):
    """Raw data missing or unreadable; the message names the file."""


class LabNotFoundError(MediLakeError, ValueError):
    """An unknown lab id was asked for (e.g. ``check 09``)."""
