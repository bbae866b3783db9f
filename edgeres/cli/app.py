"""The `edgeres` application: every command and command group, registered from one explicit list."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from typer._click import exceptions as click_exceptions  # typer's own click; typer exports no error base
from typer.core import TyperCommand, TyperGroup

from edgeres import __version__
from edgeres.cli import (
    build,
    camera,
    deploy,
    doctor,
    engine,
    finetune,
    frames,
    model,
    profile,
    report,
    sensitivity,
    verify,
)
from edgeres.cli.reporting import fail, say

COMMANDS: tuple[Callable[..., Any], ...] = (
    model.export, model.info, model.summary, finetune.finetune, build.build, engine.engine, sensitivity.sensitivity,
    profile.profile, report.report, verify.verify, doctor.doctor, camera.camera,
)  # fmt: skip
# (name, help, commands) of each sub-command group.
GROUPS: tuple[tuple[str, str, tuple[Callable[..., Any], ...]], ...] = (
    ("deploy", "Deployment configs for a built model: DeepStream nvinfer, Triton model repository.",
     (deploy.deepstream, deploy.triton)),
    ("frames", "Raw YUV 4:2:2 camera frames (YUYV, UYVY, I422, NV16): encode, decode, info.",
     (frames.encode, frames.decode, frames.info)),
)  # fmt: skip
HELP = "Put ResNet50 on NVIDIA edge hardware: PyTorch -> ONNX -> INT8/FP16 -> TensorRT engine."


def _without_flag_types(params: list[Any]) -> list[Any]:
    """On/off flags (`--fp16`, `--help`) get no type column in help: typer would print `<bool>` there."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class PlainFlagsCommand(TyperCommand):
    """A command whose help shows flags without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))


class PlainFlagsGroup(TyperGroup):
    """A command group whose help shows flags without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))


class OneLineUsageErrors(PlainFlagsGroup):
    """The root group: a usage error (an unknown option, a value out of range) is one line `error: ...`, exit 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click_exceptions.NoArgsIsHelpError as exc:  # no arguments: the help, as before
            exc.show()
            sys.exit(exc.exit_code)
        except click_exceptions.ClickException as exc:
            fail(exc.format_message())
            sys.exit(exc.exit_code)
        except typer.Abort:
            fail("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _typer(help_text: str, root: bool = False) -> typer.Typer:
    return typer.Typer(
        help=help_text, no_args_is_help=True, add_completion=root, pretty_exceptions_enable=False,
        cls=OneLineUsageErrors if root else PlainFlagsGroup,
    )  # fmt: skip


def _show_version(asked: bool) -> None:
    if asked:
        say(f"edgeres {__version__}")
        raise typer.Exit()


def _root_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Options of `edgeres` itself, before any command."""


def make_app() -> typer.Typer:
    """The typer application with every command of COMMANDS and GROUPS."""
    root = _typer(HELP, root=True)
    root.callback()(_root_options)
    for command in COMMANDS:
        root.command(cls=PlainFlagsCommand)(command)
    for name, help_text, commands in GROUPS:
        group = _typer(help_text)
        for command in commands:
            group.command(cls=PlainFlagsCommand)(command)
        root.add_typer(group, name=name)
    return root


app = make_app()


INTERRUPTED_EXIT = 130


def _end_interrupted() -> NoReturn:
    """After an interrupt has been reported, end at once with its exit code: nothing else may run, and no
    interrupt arriving while the interpreter shuts down may turn the reported exit into a death by signal."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(INTERRUPTED_EXIT)


def main() -> None:
    """Console entry point (also `python -m edgeres` and the repository's cli.py)."""
    try:
        app(prog_name="edgeres")
    except SystemExit as done:
        if done.code == INTERRUPTED_EXIT:
            _end_interrupted()
        raise
    except KeyboardInterrupt:  # a second interrupt, after the first was reported
        _end_interrupted()
