"""What every ``zsad`` command shares: one-line errors with exit code 2, ``--quiet``, option parsing."""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from zsad_bench.errors import ZsadError

F = TypeVar("F", bound=Callable[..., Any])


class Interrupted(ZsadError):
    """A command stopped by Ctrl-C, with what to do next: one line on stderr, exit code 130 (the shell's
    128 + SIGINT), no traceback."""

    exit_code = 130
    prefix = "interrupted"


# What the file system refuses for a path the user gave (an --out that is a file where a folder is needed
# or the reverse, a full disk, no permission): the user's to fix, so one line like any other bad input.
REFUSED_BY_FILE_SYSTEM = frozenset(
    {
        errno.EEXIST,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
    }
)


class ZsadGroup(click.Group):
    """A click group whose commands report ``ZsadError`` as ``error: ...`` on stderr, exit code 2, and a
    path the file system refuses (``REFUSED_BY_FILE_SYSTEM``) the same way. Every file is written through
    ``zsad_bench.atomic``, so such a refusal leaves no half-written file behind."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZsadError as exc:
            click.echo(f"{getattr(exc, 'prefix', 'error')}: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            if exc.errno not in REFUSED_BY_FILE_SYSTEM or not exc.filename:
                raise
            path = exc.filename2 or exc.filename  # a rename names its hidden temporary source first
            click.echo(
                f"error: cannot write {path} ({exc.strerror}); give a path that is (or can become) "
                "what the option asks for, with room and permission to write",
                err=True,
            )
            ctx.exit(ZsadError.exit_code)


def accept_quiet_everywhere(command: click.Command) -> None:
    """Give every command under ``command`` a ``-q/--quiet`` flag, as the README promises, so a script
    can pass it to any command; on a listing (which prints only its result) the flag changes nothing."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_quiet_everywhere(sub)
        return
    if any("--quiet" in getattr(p, "opts", ()) for p in command.params):
        return
    command.params.append(
        click.Option(
            ["--quiet", "-q"],
            is_flag=True,
            expose_value=False,
            help="Accepted by every command; this one prints only its result.",
        )
    )


class _AutoOrInt(click.ParamType):
    """``auto`` or an integer, checked by ``engine.batching.parse_auto_int`` (imported when a command that
    takes the option runs, so listings stay free of torch)."""

    def __init__(self, name: str, minimum: int, what: str) -> None:
        self.name, self.minimum, self.what = name, minimum, what

    def get_metavar(self, *args: Any, **kwargs: Any) -> str:  # click uppercases the name otherwise
        return self.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        from zsad_bench.engine.batching import parse_auto_int

        try:
            return parse_auto_int(value, self.minimum, self.what)
        except ZsadError as exc:
            self.fail(str(exc), param, ctx)


BATCH_SIZE = _AutoOrInt("N|auto", 1, "batch size")
WORKERS = _AutoOrInt("N|auto", 0, "number of loader workers")


def batch_options(func: F) -> F:
    """``--batch-size N|auto`` and ``--num-workers N|auto`` of the evaluating commands."""
    func = click.option(
        "--num-workers",
        type=WORKERS,
        default="auto",
        show_default=True,
        help="Data-loader worker processes; auto = up to 16 on a GPU, none on the CPU.",
    )(func)
    return click.option(
        "--batch-size",
        type=BATCH_SIZE,
        default="auto",
        show_default=True,
        help="Images per forward pass; auto = the largest batch that fits on a GPU, 8 on the CPU.",
    )(func)


def quiet_option(func: F) -> F:
    """``--quiet``: no progress bars, no informational lines (results and errors still print)."""
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars or informational output.")(func)


def info(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(message, err=True)


def split_names(value: str) -> list[str]:
    """``"clip,clip-ac"`` -> ``["clip", "clip-ac"]`` (empty items dropped)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_options(
    pairs: tuple[str, ...], models: Sequence[str] = (), backbone: str | None = None
) -> dict[str, str]:
    """``-o key=value`` pairs -> ``{key: value}``, the values still text.

    Each detector converts and checks the text against its declared options (``zsad models info NAME``);
    with ``models`` that happens here, for each of them with ``backbone`` (``--backbone``), so a bad value
    fails before any work. Options
    with their own flag (``backbone``, ``device``) or set by training (``trained_on``) are refused.
    """
    from zsad_bench.options import settable_by_user

    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ZsadError(f"option '{pair}' is not KEY=VALUE, e.g. -o image_size=518")
        settable_by_user(key)
        options[key] = raw
    if models:
        from zsad_bench._factory import check_options

        check_options(models, options, backbone=backbone)
    return options


def quiet_libraries() -> None:
    from zsad_bench.engine.runner import quiet_libraries as quiet

    quiet()
