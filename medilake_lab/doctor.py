"""``medilake_lab doctor``: is this machine ready? Each line is OK or the exact fix."""

from __future__ import annotations

from medilake_lab import config, feeds
from medilake_lab.setup import JAVA_HELP, MIN_JAVA, cached_jars, java_version


def diagnose() -> list[tuple[bool, str, str]]:
    """``(ok, what, detail)`` for Java, Delta jars, raw data, warehouse and the Jupyter kernel."""
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
    manifest = config.data_dir() / feeds.LANDING_DIR / feeds.MANIFEST_NAME
    results.append((manifest.exists(), "raw data",
                    str(manifest.parent) if manifest.exists()
                    else f"no {manifest}: run `medilake_lab generate`"))
    wh = config.warehouse_dir()
    try:
        wh.mkdir(parents=True, exist_ok=True)
        probe = wh / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        results.append((True, "warehouse", f"{wh} (writable)"))
    except OSError as exc:
        results.append((False, "warehouse", f"{wh} not writable ({exc}); set MEDILAKE_WAREHOUSE"))
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec("python3")
        results.append((True, "Jupyter kernel", f"python3 → {spec.argv[0]}"))
    except Exception as exc:  # noqa: BLE001 - report any kernel problem as a fix
        results.append((False, "Jupyter kernel", f"{exc}; run `make setup` to install ipykernel"))
    return results
