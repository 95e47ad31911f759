"""Stopping a render between frames: by SIGINT/SIGTERM in the main thread, or ``Stop.set()`` from another."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from vom_plugin.errors import attached_result


class Stop:
    """Set by SIGINT/SIGTERM (or by whoever runs the render in another thread, naming the signal its own
    process received: a worker's client); the render stops after the frame in hand, leaving only complete
    files."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.by = ""  # who stopped it, for the message: a signal's name, or "Stop.set()"
        # the RenderResult of the render that returned with it (``signals`` gives it to a signal passed on after)
        self.result: Any = None

    def set(self, signum: int | None = None, *, to: str = "", why: str = "") -> None:
        """Stop the render; ``signum``: the signal received, when that is why (a worker's client's); ``to``: whom
        it was sent to, when that is not who asked for the render (said in the message: "SIGTERM to the vom
        worker"); ``why``: what stopped it, when no signal did (said instead)."""
        # the reason before the flag: a render that sees the flag set reads the reason with it
        self.by = why or ("Stop.set()" if signum is None else signal.Signals(signum).name + (f" to {to}" if to else ""))
        self.signal = signal.SIGINT if signum is None else signum

    def is_set(self) -> bool:
        return self.signal is not None

    def clear(self) -> None:
        """Ready for another render (a Stop that was set stops every render given it until then)."""
        self.signal, self.by = None, ""


def handle_signals(handler: Any, kinds: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> dict[int, Any]:
    """``handler`` for each of ``kinds`` that the process does not ignore; the handlers it replaced, to restore.
    A signal the process was started ignoring stays ignored (``nohup``, a shell's ``&``, a wrapper's trap: a
    render must outlive the Ctrl-C meant for the shell that started it). One whose handler the application
    embedding Python installed in C (``getsignal`` says None: Nuke's, Blender's) stays the application's: Python
    cannot put such a handler back (``signal.signal(s, None)`` raises), so taking it would leave vom's for good."""
    return {s: signal.signal(s, handler) for s in kinds if signal.getsignal(s) not in (signal.SIG_IGN, None)}


def reports_stops(handler: Any) -> Any:
    """Mark ``handler`` as a command's own (vom's command line): a render that a signal stopped does not pass the signal
    on to it (``signals``), since the command says how the render ended (its CancelledError, exit 130)."""
    handler.vom_reports_stops = True
    return handler


@contextlib.contextmanager
def signals(stop: Stop | None = None) -> Iterator[Stop]:
    """SIGINT/SIGTERM stop the render after the frame in hand (in the main thread, where handlers run). Once the block
    is over, each signal received is passed on to the handler it replaced, as the process would have taken it: Python's
    SIGINT handler raises KeyboardInterrupt, a default SIGTERM ends the process, a host's own handler runs (QA: a TD's
    batch loop caught the render's CancelledError as any Exception and went on to the next shot after a farm's
    SIGTERM, its own handler never called). vom's command line (``reports_stops``) says the stop itself."""
    stop = stop or Stop()
    stop.result = None  # a Stop given to renders one after another: this render's, once it has one
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be installed from the main thread; hosts cancel otherwise
        return
    received: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        received.append(signum)
        if not stop.is_set():  # the first signal is why it stopped (a farm's SIGTERM, then its SIGINT)
            stop.set(signum)

    old = handle_signals(handler)
    stopped: BaseException | None = None  # the render's own exception (its CancelledError, with what is on disk)
    try:
        yield stop
    except BaseException as e:
        stopped = e
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        # what is on disk: the exception's, or the result of a render that finished all the same (a signal during its
        # last frame)
        result = attached_result(stopped) if stopped is not None else stop.result
        for s in dict.fromkeys(received):
            if getattr(old[s], "vom_reports_stops", False):
                continue
            try:
                signal.raise_signal(s)
            except BaseException as e:
                if result is not None and attached_result(e) is None:
                    e.render_result = result  # type: ignore[attr-defined]
                raise
