"""Old option spellings keep working for one release: rewritten to the new ones before click parses (so they never
show in --help), each with a one-line deprecation notice. Light on purpose: the command group loads it at start-up."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

RENAMED_ATTR = "__qmae_renamed__"


def renamed(old_to_new: Mapping[str, str]) -> Callable:
    """Keep old option spellings working for one release: ``{"--limit": "--images"}``. They are rewritten to the
    new spelling before click parses (so they never show in --help), each with a deprecation notice on stderr."""

    def deco(fn: Callable) -> Callable:
        setattr(fn, RENAMED_ATTR, {**getattr(fn, RENAMED_ATTR, {}), **old_to_new})
        return fn

    return deco


def rewrite_old_spellings(args: Sequence[str], old_to_new: Mapping[str, str]) -> list[str]:
    """``args`` with every old option spelling replaced by its new one (``--old V`` and ``--old=V``)."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + list(args[i:])
        name, eq, value = arg.partition("=")
        if name in old_to_new:
            new = old_to_new[name]
            click.echo(f"warning: {name} is deprecated, use {new}", err=True)
            arg = f"{new}{eq}{value}"
        out.append(arg)
    return out


class QMAECommand(click.Command):
    """A command whose old option spellings (declared with :func:`renamed`) still parse."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.renamed: dict[str, str] = dict(getattr(self.callback, RENAMED_ATTR, {}))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, rewrite_old_spellings(args, self.renamed))
