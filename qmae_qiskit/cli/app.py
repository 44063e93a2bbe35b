"""The ``qmae-qiskit`` click group: commands stay thin (parse, validate, call the library)."""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Iterator, MutableMapping

import click

from qmae_qiskit.cli.spellings import QMAECommand
from qmae_qiskit.errors import QMAEWarning, one_line

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError, PermissionError, NotADirectoryError)

# command name -> ("module:attribute", its short help). The module is imported when the command is used, so
# `qmae-qiskit --help` lists every command without importing torch or Qiskit (tests/test_cli_lazy.py checks
# that each short help here is the command's own).
COMMANDS: dict[str, tuple[str, str]] = {
    "calibration": (
        "qmae_qiskit.cli.calibration:calibration_group",
        "Calibration snapshots (usable wherever --noise-model is accepted).",
    ),
    "circuit": (
        "qmae_qiskit.cli.circuit:circuit_cmd",
        "Export the SWAP-test training circuit and the reconstruction circuit (QPY and OpenQASM 3).",
    ),
    "classifier": (
        "qmae_qiskit.cli.classifier:classifier_group",
        "The 16x16 MNIST ResNet18 that judges reconstructions.",
    ),
    "evaluate": (
        "qmae_qiskit.cli.evaluate:evaluate_cmd",
        "Evaluate the trained run in RUN on a split and write eval.json.",
    ),
    "figure8": (
        "qmae_qiskit.cli.figure8:figure8_cmd",
        "Train QMAE and QAE with one image per Adam step (paper Algorithm 1); draw and quantify Figure 8.",
    ),
    "jobs": ("qmae_qiskit.cli.jobs:jobs_group", "Job records written by `submit` and `study`."),
    "report": ("qmae_qiskit.cli.report:report_group", "Reports on the circuits for a backend."),
    "reproduce": (
        "qmae_qiskit.cli.reproduce:reproduce_cmd",
        "Train the classifier, QMAE and QAE at 25 %, QMAE at 12.5 % and 50 %; evaluate; write Table 1 and figures.",
    ),
    "study": ("qmae_qiskit.cli.study:study_group", "Studies of what a device gives."),
    "submit": (
        "qmae_qiskit.cli.jobs:submit_cmd",
        "Submit the evaluation of the trained RUN on N images (Estimator fidelity + Sampler images, one Batch).",
    ),
    "sweep": (
        "qmae_qiskit.cli.sweep:sweep_cmd",
        "Train and evaluate every cell of a grid (exact backend) on Dask; summary.json/md with 95 % intervals.",
    ),
    "train": (
        "qmae_qiskit.cli.train:train_cmd",
        "Train QMAE or QAE on MNIST; writes config.json, metrics.jsonl, checkpoint.pt and loss.png.",
    ),
}


def _quiet_openmp() -> None:
    """Idle OpenMP threads sleep instead of spinning: with torch's two threads and any other process on the second
    core, spinning made small matrix products ~100x slower (costs ~25 % on an idle machine). OpenMP reads it when
    torch loads, so it is set before a command's module is imported; an explicit $OMP_WAIT_POLICY wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands: each imported from its "module:attribute" the first time it is looked up."""

    def __init__(self, specs: dict[str, tuple[str, str]]) -> None:
        self.specs = specs
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded:
            target = self.specs[name][0]  # KeyError: an unknown command, as for a dict
            module, _, attr = target.partition(":")
            _quiet_openmp()
            self.loaded[name] = getattr(importlib.import_module(module), attr)
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self.specs.pop(name, None)
        self.loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self.specs, *self.loaded}))

    def __len__(self) -> int:
        return len({*self.specs, *self.loaded})

    def short_help(self, name: str, limit: int) -> str:
        """The listed help of ``name`` without importing it (unless it was added or loaded already)."""
        if name in self.loaded or name not in self.specs:
            return self[name].get_short_help_str(limit)
        return click.utils.make_default_short_help(self.specs[name][1], limit)


class QMAEGroup(click.Group):
    """Turns user errors into one line on stderr and exit code 2 (set QMAE_DEBUG=1 for the traceback). Its
    commands keep their old option spellings working (:class:`~qmae_qiskit.cli.spellings.QMAECommand`)."""

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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a lazy group lists its commands' short help without importing them."""
        if not isinstance(self.commands, LazyCommands):
            return super().format_commands(ctx, formatter)
        names = [n for n in self.list_commands(ctx) if n in self.commands.loaded or n in self.commands.specs]
        if names:
            limit = formatter.width - 6 - max(len(n) for n in names)
            with formatter.section("Commands"):
                formatter.write_dl([(n, self.commands.short_help(n, limit)) for n in names])


@click.group(
    cls=QMAEGroup,
    commands=LazyCommands(COMMANDS),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="qmae-qiskit")
def main() -> None:
    """Quantum Masked Autoencoders in Qiskit: build, train, evaluate and run QMAE on IBM hardware."""
    _quiet_openmp()
