"""Set a learner's tables aside instead of deleting them, and put them back.

``reset`` removes, and ``catchup`` replaces, the tables (and folders such as lab 05's
checkpoints) of labs. Both move them into a backup folder beside the warehouse, at the same
relative paths::

    <warehouse>-backups/<YYYYmmddTHHMMSS>-catchup-02/silver/patients/...

A move within one file system is a rename: no copy, no extra disk space. When catchup's rebuild
fails, :func:`restore` removes what it left half-built and moves every item back; otherwise the
backup stays for the learner to take back (or delete).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from medilake_lab.contract.labs import LabSpec
from medilake_lab.errors import WarehouseError
from medilake_lab.runtime import config


@dataclass(frozen=True)
class LabItem:
    """A table or folder a lab creates under the warehouse root.

    ``lab``: the lab id; ``name``: ``"silver.patients"`` for a table, ``"volumes/landing/"`` for a
    folder; ``relative``: its path under the warehouse root."""

    lab: str
    name: str
    relative: Path


def lab_items(labs: list[LabSpec]) -> list[LabItem]:
    """Every table and folder of ``labs``, in lab order, existing or not."""
    items = []
    for lab in labs:
        items += [LabItem(lab.id, name, Path(*name.split(".", 1))) for name in lab.tables]
        items += [LabItem(lab.id, f"{folder}/", Path(folder)) for folder in lab.folders]
    return items


def existing(items: list[LabItem], warehouse: str | os.PathLike | None = None) -> list[LabItem]:
    """The ``items`` present in the warehouse."""
    root = config.warehouse_dir(warehouse)
    return [item for item in items if (root / item.relative).exists()]


def backup_dir(label: str, warehouse: str | os.PathLike | None = None) -> Path:
    """A new, not yet created backup folder ``<warehouse>-backups/<UTC time>-<label>``."""
    root = config.warehouse_dir(warehouse)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = root.parent / f"{root.name}-backups" / f"{stamp}-{label}"
    n = 1
    while folder.exists():
        n += 1
        folder = folder.with_name(f"{stamp}-{label}-{n}")
    return folder


def set_aside(items: list[LabItem], backup: Path, warehouse: str | os.PathLike | None = None) -> None:
    """Move the existing ``items`` from the warehouse into ``backup`` (same relative paths).

    Raises
    ------
    WarehouseError: a move failed; the items moved so far were moved back first, so the
        warehouse is as it was (the message names the item and the folders). An interruption
        (KeyboardInterrupt) is re-raised after the same undo.
    """
    root, moved = config.warehouse_dir(warehouse), list[LabItem]()
    for item in existing(items, warehouse):
        try:
            (backup / item.relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(root / item.relative, backup / item.relative)
        except BaseException as exc:  # a failed move, or Ctrl-C between two moves: undo them all
            if not (root / item.relative).exists():
                moved.append(item)  # this move completed before the interruption
            restore(moved, backup, warehouse)
            if isinstance(exc, OSError):
                raise WarehouseError(f"could not move {item.name} from {root} to the backup folder "
                                     f"{backup} ({exc}); nothing was removed") from None
            raise
        moved.append(item)


def restore(items: list[LabItem], backup: Path | None, warehouse: str | os.PathLike | None = None) -> None:
    """Put ``items`` back from ``backup``: whatever the warehouse holds at their paths now (a
    half-built table) is removed first; the backup folder is removed once empty. With ``backup``
    None (nothing was set aside) the items are only removed.

    Raises
    ------
    WarehouseError: an item could not be put back; the message names it and the backup folder,
        which keeps what was not restored.
    """
    root = config.warehouse_dir(warehouse)
    for item in items:
        target = root / item.relative
        try:
            if target.exists():
                shutil.rmtree(target)
            if backup and (source := backup / item.relative).exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(source, target)
        except OSError as exc:
            raise WarehouseError(f"could not restore {item.name} into {root} ({exc}): it is still "
                                 f"in {backup}; copy it back by hand (same relative path)") from None
    if backup is None or not backup.exists():
        return
    for folder in sorted((p for p in backup.rglob("*") if p.is_dir()), reverse=True) + [backup]:
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
    if not any(backup.parent.iterdir()):
        backup.parent.rmdir()
