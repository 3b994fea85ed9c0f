"""Worker processes started by ``hotline serve`` (``hotline worker`` children)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from ivr.config.schema import HotlineConfig

logger = logging.getLogger(__name__)


async def start_worker_processes(
    config: HotlineConfig, count: int
) -> list[asyncio.subprocess.Process]:
    """``count`` separate ``hotline worker`` processes on the same config file."""
    if count <= 0 or not config.transcription.enabled:
        return []
    model = config.transcription.resolved_model_path()
    if model is not None:
        model = config.resolve_path(model)
    if config.source is None or model is None or not model.is_dir():
        logger.warning(
            "no vosk model at %s: calls are recorded but not transcribed (docs/transcription.md)",
            model,
        )
        return []
    processes = []
    for _ in range(count):
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ivr.cli", "-c", str(config.source), "worker"
            )
        )
    logger.info("started %d transcription worker(s)", len(processes))
    return processes


async def stop_worker_processes(
    processes: list[asyncio.subprocess.Process], grace: float = 10.0
) -> None:
    """SIGTERM (the worker finishes its job or leaves it to the lease), then SIGKILL."""
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
