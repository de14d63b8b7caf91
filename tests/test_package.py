"""The package's stable public names: what notebooks import must resolve in a fresh interpreter,
whatever else was imported first (they are loaded lazily, PEP 562)."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import medilake_lab


@pytest.mark.parametrize("name", medilake_lab.__all__)
def test_public_name_imports_in_a_fresh_interpreter(name: str) -> None:
    code = f"from medilake_lab import {name}; print(type({name}).__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("module", "function"), result.stdout


def test_module_exports_are_the_modules_notebooks_expect() -> None:
    assert isinstance(medilake_lab.feeds, types.ModuleType) and hasattr(medilake_lab.feeds, "FEEDS")
    assert callable(medilake_lab.grade) and callable(medilake_lab.show)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        medilake_lab.no_such_name  # noqa: B018
