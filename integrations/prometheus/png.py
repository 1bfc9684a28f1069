"""PNG from SVG with the machine's headless Chromium, for Slack (which previews PNG inline but
shows an SVG only as a file to download).

No raster library is installed (Pillow, cairosvg and matplotlib are not, and are heavy to add
for one picture); Debian's `chromium` is already a system dependency (the browser tests use
it). One screenshot takes about 2 s; every render is bounded and its process group killed at
the deadline, and a machine without Chromium gets `None`, so the caller posts the SVG instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

from firelane.errors import ActionError

__all__ = ["PngUnavailable", "chromium", "svg_to_png"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class PngUnavailable(ActionError):
    """Chromium failed or ran past its deadline: the chart is posted as SVG instead."""


def chromium() -> str | None:
    """The Chromium executable on PATH (`chromium`, or `chromium-browser`), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


async def svg_to_png(svg: str, width: int, height: int,
                     timeout_seconds: float = 20.0) -> bytes | None:
    """A `width` x `height` PNG screenshot of `svg`; None when no Chromium is installed.
    Raises `PngUnavailable` when Chromium fails or takes longer than `timeout_seconds`.

    The page is a local file holding only our own SVG (no script, nothing remote), so
    Chromium's sandbox is switched off: it cannot start under root or in most containers."""
    binary = chromium()
    if binary is None:
        return None
    with tempfile.TemporaryDirectory(prefix="firelane-png-") as folder:
        root = Path(folder)
        (root / "chart.svg").write_text(svg, encoding="utf-8")
        target = root / "chart.png"
        proc = await asyncio.create_subprocess_exec(
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--mute-audio", "--no-first-run", f"--user-data-dir={root / 'profile'}",
            f"--window-size={width},{height}", f"--screenshot={target}",
            (root / "chart.svg").as_uri(),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        try:
            async with asyncio.timeout(timeout_seconds):
                code = await proc.wait()
        except TimeoutError as exc:
            raise PngUnavailable(f"chromium did not render the chart within "
                                 f"{timeout_seconds:g} s") from exc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        data = target.read_bytes() if target.exists() else b""
    if code != 0 or not data.startswith(PNG_MAGIC):
        raise PngUnavailable(f"chromium exited with {code} without a PNG")
    return data
