"""The ``qmae-qiskit`` click group: commands stay thin (parse, validate, call the library)."""

from __future__ import annotations

import os
import sys
import warnings

import click

from qmae_qiskit.cli.options import QMAECommand
from qmae_qiskit.errors import QMAEWarning, one_line

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError, PermissionError, NotADirectoryError)


class QMAEGroup(click.Group):
    """Turns user errors into one line on stderr and exit code 2 (set QMAE_DEBUG=1 for the traceback). Its
    commands keep their old option spellings working (:class:`~qmae_qiskit.cli.options.QMAECommand`)."""

    command_class = QMAECommand
    group_class = type  # subgroups are QMAEGroups too

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                default = warnings.showwarning

                def show(message, category, filename, lineno, file=None, line=None):
                    if issubclass(category, QMAEWarning):  # our warnings: one line, no source location
                        click.echo(f"Warning: {one_line(message)}", err=True)
                    else:
                        default(message, category, filename, lineno, file, line)

                warnings.showwarning = show
                return super().invoke(ctx)
        except USER_ERRORS as exc:
            if os.environ.get("QMAE_DEBUG"):
                raise
            click.echo(f"Error: {one_line(exc)}", err=True)
            sys.exit(2)


@click.group(cls=QMAEGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="qmae-qiskit")
def main() -> None:
    """Quantum Masked Autoencoders in Qiskit: build, train, evaluate and run QMAE on IBM hardware."""
    # Idle OpenMP threads sleep instead of spinning: with torch's two threads and any other process on the
    # second core, spinning made small matrix products ~100x slower. Costs ~25 % on an idle machine. It must be
    # set before torch loads (the commands import it lazily); an explicit $OMP_WAIT_POLICY wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
