"""Turn SIGINT and SIGTERM into a polite stop request during training."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import attrs


@attrs.define
class StopFlag:
    """Set when the user asked training to stop; the name of the signal is kept."""

    signal_name: str | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop was requested."""
        return self.signal_name is not None

    @property
    def exit_code(self) -> int:
        """The exit code a shell reports for the signal: 143 for SIGTERM, else 130."""
        return 143 if self.signal_name == "SIGTERM" else 130


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Within the block, the first SIGINT/SIGTERM sets the flag; a second SIGINT aborts.

    Outside the main thread (where handlers cannot be installed) the flag is
    never set.
    """
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if flag.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.signal_name = signal.Signals(signum).name

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
