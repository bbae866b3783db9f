"""What every command shares: the two consoles, literal printing, and the one error boundary.

Text that comes from the user or the library (paths, names, messages) is printed literally: never read as rich
markup, never highlighted. Only the fixed prefixes written here are styled.

The boundary (`reports_errors`): a library error and an expected failure of the machine or the input (an
OSError with its file and cause, memory exhausted, an OpenCV, protobuf or JSON decoding error) are one line
`error: ...` and exit code 2; Ctrl-C and SIGTERM are one line `interrupted: ...` and exit code 130; a reader
that closed standard output (`| head`) is one line `interrupted: ...` and exit code 141, as a shell reports
SIGPIPE; anything else is a bug: one line naming the exception, exit code 1, and the traceback only with
EDGERES_DEBUG=1.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from edgeres.errors import EdgeresError


class _Stdout(Console):
    """stdout, whose reader may leave first (`edgeres camera ... | head`): the broken pipe reaches the error
    boundary, which ends the command with one line (rich would exit silently with code 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


console = _Stdout()


err_console = Console(stderr=True)


def say(text: object, style: str | None = None) -> None:
    """One line on stdout, literally (optionally in one style)."""
    console.print(Text(str(text), style=style or ""), highlight=False, soft_wrap=True)


def wrote(text: object) -> None:
    """'wrote <text>': an artifact written."""
    console.print(Text.assemble(("wrote", "green"), f" {text}"), highlight=False, soft_wrap=True)


_LINE_BREAKS = {code: repr(chr(code))[1:-1] for code in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029) if code != 0x09}


def one_line(text: object) -> str:
    """`text` with line breaks and other control characters escaped (a file name may hold a newline), so a
    message stays the one line its reader expects."""
    return str(text).translate(_LINE_BREAKS)


def warn(text: object) -> None:
    """'warning: <text>' on stderr, one line."""
    err_console.print(Text.assemble(("warning:", "bold yellow"), f" {one_line(text)}"), highlight=False, soft_wrap=True)


def fail(text: object) -> None:
    """'error: <text>' on stderr, one line."""
    err_console.print(Text.assemble(("error:", "bold red"), f" {one_line(text)}"), highlight=False, soft_wrap=True)


F = TypeVar("F", bound=Callable[..., Any])
DEBUG_ENV = "EDGERES_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _os_error_line(exc: OSError) -> str:
    cause = exc.strerror or str(exc) or type(exc).__name__
    names = [str(name) for name in (exc.filename, exc.filename2) if name is not None]
    return ": ".join([*names, cause]) if names else cause


def expected_failure(exc: BaseException) -> str | None:
    """The one line for a failure that is not a bug (the machine or the input), or None for a bug."""
    if isinstance(exc, EdgeresError):
        return str(exc)
    if isinstance(exc, OSError):
        return _os_error_line(exc)
    if isinstance(exc, MemoryError):
        return f"out of memory{f' ({exc})' if str(exc) else ''}"
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON: {exc}"
    kind = type(exc)
    if kind.__module__ == "cv2" and kind.__name__ == "error":  # cv2 is not imported here for its error type
        return f"OpenCV: {str(exc).strip().splitlines()[-1] if str(exc).strip() else 'error'}"
    message_module = sys.modules.get("google.protobuf.message")
    if message_module is not None and isinstance(exc, message_module.DecodeError):
        return f"not a valid protobuf message (an ONNX model or a TensorRT file?): {exc}"
    return None


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While the block runs, SIGTERM interrupts it as Ctrl-C does; the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted() -> None:
    err_console.print(
        Text.assemble(("interrupted", "bold red"), ": no partial artifact was left behind"),
        highlight=False,
        soft_wrap=True,
    )


OUTPUT_CLOSED_EXIT = 128 + signal.SIGPIPE


def output_closed() -> None:
    """One line on stderr; stdout goes to /dev/null so that the interpreter's last flush cannot fail again."""
    try:
        stdout_fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file descriptor (a test runner's buffer)
        stdout_fd = None
    if stdout_fd is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout_fd)
        os.close(devnull)
    err_console.print(
        Text.assemble(("interrupted", "bold red"), ": standard output was closed by its reader"),
        highlight=False,
        soft_wrap=True,
    )


def report_bug(exc: BaseException) -> None:
    """One line: an unexpected exception is a bug; the traceback only when EDGERES_DEBUG=1."""
    if debugging():
        traceback.print_exception(exc, file=sys.stderr)
    message = " ".join(str(exc).split())
    fail(f"internal error (a bug): {type(exc).__name__}: {message}; rerun with {DEBUG_ENV}=1 for the traceback")


def reports_errors(func: F) -> F:
    """The error boundary of a command (see the module docstring); warnings are shown loudly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
            warn(message)

        previous = warnings.showwarning
        warnings.showwarning = show_warning
        try:
            with sigterm_interrupts():
                return func(*args, **kwargs)
        except KeyboardInterrupt:
            interrupted()
            raise typer.Exit(130) from None
        except BrokenPipeError:
            output_closed()
            raise typer.Exit(OUTPUT_CLOSED_EXIT) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            line = expected_failure(exc)
            if line is None:
                report_bug(exc)
                raise typer.Exit(1) from None
            if debugging():
                traceback.print_exception(exc, file=sys.stderr)
            fail(line)
            raise typer.Exit(2) from None
        finally:
            warnings.showwarning = previous

    return wrapper  # type: ignore[return-value]


class StageBars:
    """Draws a library's StageProgress callbacks as rich bars (one bar per stage); nothing before the first."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        self.progress = Progress(*columns, console=err_console)
        self.task: Any = None
        self.started = False

    def __enter__(self) -> StageBars:
        return self

    def __exit__(self, *_: object) -> None:
        if self.started:
            self.progress.stop()

    def begin(self, task: str, total: int | None) -> None:
        if not self.started:  # an error before any stage stays one line: no empty bar display
            self.progress.start()
            self.started = True
        self.task = self.progress.add_task(task, total=total)

    def advance(self, amount: int) -> None:
        self.progress.advance(self.task, amount)

    def end(self) -> None:
        task = self.progress.tasks[-1]
        self.progress.update(self.task, total=task.completed or 1, completed=task.completed or 1)
