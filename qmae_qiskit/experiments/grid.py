"""Sweep grids: ``NAME=V1,V2,...`` arguments and TOML files parsed into typed axes, every problem one line.

An axis is any training option that shapes a cell (model, seed, mask ratio, patch, latent qubits, layers, image
size, learning rate, epochs, ...) plus ``classifier_seed``. Values are parsed by the axis' type here, and checked
again in context when the cells are built (a latent size that does not fit an image size, say).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.model.config import ANSATZES

GridValue = int | float | str | tuple[int, int]
Grid = dict[str, list[GridValue]]


def _int(text: str) -> int:
    return int(text.strip())


def _float(text: str) -> float:
    value = float(text.strip())
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return value


def _patch(text: str) -> tuple[int, int]:
    h, sep, w = text.strip().lower().partition("x")
    if not sep:
        raise ValueError("write a patch as HxW, e.g. 4x8")
    return int(h), int(w)


def _fmt_float(v: float) -> str:
    return f"{v:g}"


@dataclass(frozen=True)
class Axis:
    """One sweepable option: how to parse a value, the choices if any, and its short tag in cell names."""

    name: str
    parse: Callable[[str], Any]
    tag: Callable[[Any], str]
    choices: tuple[str, ...] | None = None
    help: str = ""


AXES: dict[str, Axis] = {
    a.name: a
    for a in (
        Axis("model", str, lambda v: str(v), ("qmae", "qae"), "qmae or qae"),
        Axis("seed", _int, lambda v: f"s{v}", help="training seed (data subset, order, masks, initial angles)"),
        Axis("classifier_seed", _int, lambda v: f"c{v}", help="seed of the ResNet18 judge (one per seed, shared)"),
        Axis("mask_ratio", _float, lambda v: f"m{_fmt_float(v)}", help="fraction of patches masked"),
        Axis("patch", _patch, lambda v: f"p{v[0]}x{v[1]}", help="patch HxW [default: coarsest grid for the ratio]"),
        Axis("patch_height", _int, lambda v: f"ph{v}"),
        Axis("patch_width", _int, lambda v: f"pw{v}"),
        Axis("latent_qubits", _int, lambda v: f"k{v}"),
        Axis("layers", _int, lambda v: f"l{v}", help="ansatz layers"),
        Axis("ansatz", str, lambda v: str(v), ANSATZES, "all-pairs (the paper) or brickwork"),
        Axis("token", str, lambda v: f"tok-{v}", ("shared", "positional"), "QMAE's mask token form"),
        Axis("image_size", _int, lambda v: f"L{v}"),
        Axis("lr", _float, lambda v: f"lr{_fmt_float(v)}"),
        Axis("epochs", _int, lambda v: f"e{v}"),
        Axis("batch_size", _int, lambda v: f"b{v}"),
        Axis("train_samples", _int, lambda v: f"n{v}"),
        Axis("theta_init", str, lambda v: f"ti-{v}", ("uniform", "normal")),
        Axis("token_init", str, lambda v: f"tk-{v}", ("mean", "uniform", "constant")),
    )
}
REPLICATE_AXES = ("seed", "classifier_seed")  # cells that differ only in these are replicates of one group


def axis_names() -> str:
    return ", ".join(AXES)


def canonical(name: str) -> str:
    """The axis a user-written name means (dashes or underscores); one line if there is none."""
    key = name.strip().replace("-", "_")
    if key not in AXES:
        raise QMAEError(f"unknown grid name {name!r}; sweepable names are: {axis_names()}")
    return key


def parse_value(axis: str, raw: Any) -> GridValue:
    """One value of ``axis`` from text (or a TOML scalar); one line naming the axis if it is not valid."""
    ax = AXES[axis]
    if isinstance(raw, bool):
        raise QMAEError(f"grid value {raw!r} for {axis} is not valid; give numbers or names, not true/false")
    text = str(raw).strip() if not isinstance(raw, list) else "x".join(str(x) for x in raw)
    if ax.parse is _float and isinstance(raw, int | float):
        text = repr(float(raw))
    try:
        value = ax.parse(text)
    except (ValueError, TypeError) as exc:
        raise QMAEError(f"grid value {text!r} for {axis} is not valid ({exc}); {ax.help or axis} expected") from None
    if ax.choices is not None and value not in ax.choices:
        raise QMAEError(f"unknown value {text!r} for {axis}; use one of {', '.join(ax.choices)}")
    return value


def parse_grid_args(args: Iterable[str]) -> Grid:
    """``["model=qmae,qae", "seed=0,1,2"]`` -> {"model": ["qmae", "qae"], "seed": [0, 1, 2]}, in the given order."""
    grid: Grid = {}
    for arg in args:
        name, sep, values = arg.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise QMAEError(f"--grid {arg!r} is not NAME=V1,V2,...; e.g. --grid seed=0,1,2")
        axis = canonical(name)
        if axis in grid:
            raise QMAEError(f"grid name {axis} is given twice; list all its values in one --grid {axis}=...")
        parts = [v for v in values.split(",")]
        if any(not v.strip() for v in parts):
            raise QMAEError(f"--grid {arg!r} has an empty value; separate values by single commas")
        grid[axis] = [parse_value(axis, v) for v in parts]
    return grid


def load_grid_file(path: str | Path) -> Grid:
    """A TOML file: a ``[grid]`` table (or top-level keys) of NAME = [values]; e.g. ``seed = [0, 1, 2]``."""
    blocks = load_grid_blocks(path)
    if len(blocks) != 1:
        raise QMAEError(f"grid file {path} has {len(blocks)} [[grid]] blocks where one grid is expected")
    return blocks[0]


def load_grid_blocks(path: str | Path) -> list[Grid]:
    """A grid file as a list of grids: one ``[grid]`` table, or several ``[[grid]]`` blocks whose cells are joined
    (a union of products: e.g. QMAE over layers x token beside QAE over layers, which has no token to vary)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise QMAEError(f"cannot read grid file {path} ({exc.strerror or exc}); pass an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise QMAEError(f"grid file {path} is not valid TOML ({exc}); see `qmae-qiskit sweep --help`") from None
    tables = raw.get("grid", raw)
    tables = tables if isinstance(tables, list) else [tables]
    if not tables or not all(isinstance(t, dict) and t for t in tables):
        raise QMAEError(f"grid file {path} has no axes; write a [grid] table such as: seed = [0, 1, 2]")
    return [_grid_from_table(t, path) for t in tables]


def _grid_from_table(table: dict[str, Any], path: Path) -> Grid:
    grid: Grid = {}
    for name, values in table.items():
        axis = canonical(name)
        if axis in grid:
            raise QMAEError(f"grid file {path} names {axis} twice")
        values = values if isinstance(values, list) and not (axis == "patch" and _is_pair(values)) else [values]
        if not values:
            raise QMAEError(f"grid file {path}: {axis} has no values")
        grid[axis] = [parse_value(axis, v) for v in values]
    return grid


def union_grid(blocks: list[Grid]) -> Grid:
    """Every axis of the blocks with all its values, in first-seen order (how a summary shows a union of grids)."""
    out: Grid = {}
    for block in blocks:
        for axis, values in block.items():
            known = out.setdefault(axis, [])
            known += [v for v in values if v not in known]
    return out


def _is_pair(values: list) -> bool:
    return len(values) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def merge_grids(*grids: Grid) -> Grid:
    """Axes of several sources in order; an axis in two sources is an error (which values would win?)."""
    out: Grid = {}
    for g in grids:
        for axis, values in g.items():
            if axis in out:
                raise QMAEError(f"grid name {axis} is given both in --grid and in --grid-file; keep one")
            out[axis] = values
    return out


def cell_count(grid: Grid) -> int:
    n = 1
    for values in grid.values():
        n *= len(values)
    return n
