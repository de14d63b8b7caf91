"""JupyterLab's contents manager for ``make lab``: a lab opens as saved.

Once a notebook's kernel is up, JupyterLab writes the kernel's ``kernelspec`` and ``language_info``
into the notebook's metadata; when they differ from what the file holds (another display name,
another Python patch version such as 3.11.7 vs 3.11.9) the notebook is marked unsaved before the
learner typed anything. The committed notebooks cannot know the learner's Python, so this manager
serves every notebook of the ``python3`` kernel with the values that kernel reports: the installed
kernelspec's display name and language, and ipykernel's ``language_info`` for this Python (the
kit's kernel runs the same virtualenv's Python as JupyterLab). Files on disk are not touched.

``make lab`` passes ``--ServerApp.contents_manager_class=medilake_lab.course.labserver.LabContentsManager``.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

#: The kernel the kit's notebooks name (``make setup`` installs it into the virtualenv)
KERNEL = "python3"


def kernel_metadata(kernel: str = KERNEL) -> dict[str, Any]:
    """The ``kernelspec`` and ``language_info`` notebook metadata JupyterLab writes once ``kernel``
    is connected: ``{"kernelspec": {"name", "display_name", "language"}, "language_info": {...}}``.
    Raises jupyter_client's NoSuchKernel when ``kernel`` is not installed."""
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(kernel)
    return {"kernelspec": {"name": kernel, "display_name": spec.display_name, "language": spec.language},
            "language_info": dict(IPythonKernel.language_info)}


class LabContentsManager(AsyncLargeFileManager):
    """Jupyter Server's default contents manager, serving notebooks of the :data:`KERNEL` kernel
    with :func:`kernel_metadata` (computed once); everything else as it is."""

    _metadata: dict[str, Any] | None = None

    async def get(self, path: str, content: bool = True, type: str | None = None, format: str | None = None,
                  require_hash: bool = False) -> dict[str, Any]:
        model = await super().get(path, content=content, type=type, format=format, require_hash=require_hash)
        if content and model["type"] == "notebook" and model["content"].metadata.get("kernelspec", {}).get(
                "name") == KERNEL:
            if LabContentsManager._metadata is None:
                LabContentsManager._metadata = kernel_metadata()
            model["content"].metadata.update(LabContentsManager._metadata)
        return model
