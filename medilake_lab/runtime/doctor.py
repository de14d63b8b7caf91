"""``medilake_lab doctor``: is this machine ready? Each line is OK or the exact fix."""

from __future__ import annotations

import os

from medilake_lab.contract import feeds
from medilake_lab.runtime import config, local_fs
from medilake_lab.runtime.jars import JAVA_HELP, MIN_JAVA, cached_jars, java_version


def diagnose() -> list[tuple[bool, str, str]]:
    """``(ok, what, detail)`` for Java, Delta jars, the local file system, raw data, warehouse and the
    Jupyter kernel."""
    results = []
    java = java_version()
    results.append((java is not None and java >= MIN_JAVA, "Java",
                    f"version {java}" if java and java >= MIN_JAVA
                    else JAVA_HELP.format(min=MIN_JAVA, found=java or "none")))
    jars = cached_jars()
    has_delta = any(j.name.startswith("io.delta_delta-spark") for j in jars)
    results.append((has_delta, "Delta jars",
                    f"{len(jars)} jars in {config.jars_dir()}" if has_delta
                    else "not fetched: run `make setup` (or `medilake_lab setup`)"))
    results.append(_local_fs())
    data = config.data_dir()
    has_data = feeds.has_raw_files(data)
    results.append((has_data, "raw data", str(data) if has_data
                    else f"no raw feeds in {data}: run `medilake_lab generate`"))
    results.append(_warehouse())
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec("python3")
        results.append((True, "Jupyter kernel", f"python3 → {spec.argv[0]}"))
    except Exception as exc:  # noqa: BLE001 - report any kernel problem as a fix
        results.append((False, "Jupyter kernel", f"{exc}; run `make setup` to install ipykernel"))
    return results


def _local_fs() -> tuple[bool, str, str]:
    """The kit's local file system jar (:mod:`medilake_lab.runtime.local_fs`): a speed-up, never a
    failure."""
    jar = local_fs.installed()
    if jar is not None:
        return True, "local file system", f"{jar.name}: Spark writes files without starting a process each"
    if os.name != "posix":
        return True, "local file system", "Hadoop's own (this system has no POSIX permissions)"
    return True, "local file system", ("Hadoop's own, which starts a process per file written: `medilake_lab setup` "
                                       "compiles the faster one when a JDK's `javac` is there")


def _warehouse() -> tuple[bool, str, str]:
    """The warehouse is a writable folder, or does not exist yet under a writable one.

    A diagnostic creates nothing: a folder that does not exist is reported, not made.
    """
    wh = config.warehouse_dir()
    from_env = config.origin(config.WAREHOUSE_ENV, "--warehouse") != "default"
    name = f"{wh} (from {config.WAREHOUSE_ENV})" if from_env else str(wh)
    fix = f"set {config.WAREHOUSE_ENV} to a writable folder"
    if wh.is_dir():
        try:
            probe = wh / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return False, "warehouse", f"{name} not writable ({exc}); {fix}"
        return True, "warehouse", f"{name} (writable)"
    if wh.exists():
        return False, "warehouse", f"{name} is a file, not a folder; {fix}"
    parent = next(p for p in wh.parents if p.exists())
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return True, "warehouse", f"{name} does not exist yet; will be created by lab 01"
    return False, "warehouse", f"{name} does not exist and {parent} is not a writable folder; {fix}"
