"""The Typer application: the command group, its callback, and one way to fail.

Every command takes ``--json`` and then prints exactly one JSON document on stdout;
progress and logs go to stderr. Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
import typer.core

from interestlens.cli import data, evaluation, model, render, serve
from interestlens.cli.shared import CLIError
from interestlens.version import installed

F = TypeVar("F", bound=Callable[..., Any])


def _no_flag_hints(params: list[Any]) -> list[Any]:
    """Blank the value hint (``<bool>``) that help would show after each flag."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
    return params


class _Command(typer.core.TyperCommand):
    """A command whose help shows no value hint after a flag."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_hints(super().get_params(ctx))


class _Group(typer.core.TyperGroup):
    """The command group, whose help shows no value hint after a flag."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_hints(super().get_params(ctx))


app = typer.Typer(
    name="interestlens",
    help="User-interest engine: profiles, recommendations, exploration and evaluation.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _reflow(doc: str) -> str:
    """A docstring as help text: each paragraph on one line, so the terminal wraps it."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def handles_errors(fn: F) -> F:
    """Turn any exception into one clear line on stderr and exit code 2.

    Set ``INTERESTLENS_DEBUG=1`` to see the traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("INTERESTLENS_DEBUG"):
                raise
            try:
                text = str(exc).strip()
            except Exception:
                text = ""
            msg = text.splitlines()[0] if text else type(exc).__name__
            if not isinstance(exc, CLIError | ValueError | FileNotFoundError):
                msg = f"{type(exc).__name__}: {msg}"
            render.error(msg)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


#: Every command in the order ``interestlens --help`` lists them.
COMMANDS: tuple[Callable[..., None], ...] = (
    data.datasets,
    data.ingest,
    model.fit,
    model.refit,
    model.profile,
    model.recommend,
    model.interests,
    model.audience,
    model.forget,
    model.demo,
    serve.serve,
    evaluation.evaluate,
    evaluation.ope,
    evaluation.simulate,
)

for _fn in COMMANDS:
    app.command(cls=_Command, help=_reflow(_fn.__doc__ or ""))(handles_errors(_fn))


def _version(value: bool) -> None:
    if value:
        render.say(f"interestlens {installed()}")
        raise typer.Exit()


@app.callback()
def main_callback(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress details to stderr.")
    ] = False,
) -> None:
    """interestlens: understand user interests, recommend, explore, evaluate."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main() -> None:
    """Entry point of the ``interestlens`` script."""
    app()
