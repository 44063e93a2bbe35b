"""Cells of a sweep: one ordinary run folder each, named by its swept values, with its settings fixed up front.

A cell is *finished* when its ``eval.json`` exists and matches what the cell asks for (model, shape, mask ratio,
finished training at the full step count, evaluation limit and mask seed, its classifier, baselines present) and
its ``config.json`` holds the cell's settings. Everything is checked before any work starts, so a grid that cannot
run (an impossible value, colliding folder names, an --out holding other settings) fails with one line and writes
nothing.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qmae_qiskit.errors import QMAEError, one_line
from qmae_qiskit.evaluate.classifier import ClassifierSettings, setting_diffs
from qmae_qiskit.experiments.grid import AXES, Grid, GridValue
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import default_patch_shape
from qmae_qiskit.train.runs import CONFIG_FILE, RESUMABLE_CHANGES, RunSettings, read_settings, settings_differences

EVAL_FILE = "eval.json"
ERROR_FILE = "error.txt"
CELL_FILE = "cell.json"
CLASSIFIERS_DIR = "classifiers"
SHAPE_KEYS = ("image_size", "latent_qubits", "patch_height", "patch_width", "trash_reset", "layers", "ansatz", "token")


@dataclass(frozen=True)
class ClassifierSpec:
    """The judge of one classifier seed at one image size: trained once, cached under ``--out/classifiers``."""

    image_size: int
    seed: int
    epochs: int = ClassifierSettings.epochs  # the recipe's defaults are train_classifier's
    batch_size: int = ClassifierSettings.batch_size
    lr: float = ClassifierSettings.lr
    augment_shift: int = ClassifierSettings.augment_shift
    limit: int | None = None  # training images (None: all)
    recipe: int = ClassifierSettings.recipe

    @property
    def key(self) -> str:
        return f"L{self.image_size}-c{self.seed}"

    def folder(self, out: Path) -> Path:
        return Path(out) / CLASSIFIERS_DIR / self.key

    def settings(self) -> dict[str, Any]:
        """Keyword arguments of :func:`qmae_qiskit.evaluate.classifier.train_and_cache` (image size aside)."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
            "augment_shift": self.augment_shift,
            "limit": self.limit,
            "recipe": self.recipe,
        }


@dataclass(frozen=True)
class EvalSpec:
    """Which test images and masks every cell is scored on."""

    limit: int | None = None
    mask_seed: int = 0


@dataclass(frozen=True)
class Cell:
    """One grid point: its folder name, swept values, run settings and classifier."""

    name: str
    axes: tuple[tuple[str, GridValue], ...]
    settings: RunSettings
    classifier: ClassifierSpec
    evaluation: EvalSpec = field(default_factory=EvalSpec)

    @property
    def axes_dict(self) -> dict[str, GridValue]:
        return dict(self.axes)

    @property
    def baseline_key(self) -> str:
        """Baselines depend only on the image size, patch grid, ratio, images, masks and classifier."""
        cfg = self.settings.config
        return (
            f"L{cfg.image_size}-p{cfg.patch_height}x{cfg.patch_width}-m{self.settings.mask_ratio:g}-"
            f"{self.classifier.key}-n{self.evaluation.limit}-ms{self.evaluation.mask_seed}"
        )

    def folder(self, out: Path) -> Path:
        return Path(out) / self.name


# ---------------------------------------------------------------------------------------------------- build
def settings_from_options(opts: dict[str, Any]) -> RunSettings:
    """Exact-backend run settings from train-style options; the patch defaults per mask ratio like ``train``."""
    shape = {k: opts[k] for k in SHAPE_KEYS if opts.get(k) is not None}
    size = shape.get("image_size", 16)
    if "patch_height" not in shape and "patch_width" not in shape and size in (4, 8, 16, 32):
        shape["patch_height"], shape["patch_width"] = default_patch_shape(size, opts.get("mask_ratio", 0.25))
    cfg = QMAEConfig(**shape)
    values = {k: v for k, v in opts.items() if k not in SHAPE_KEYS and v is not None}
    values["backend"] = "exact"
    return RunSettings(config=cfg, **values)


def cell_name(axes: tuple[tuple[str, GridValue], ...]) -> str:
    """Folder name from the swept values in grid order, e.g. ``qmae-m0.25-k7-l2-s0``; ``cell`` with no axes."""
    return "-".join(AXES[a].tag(v) for a, v in axes) or "cell"


def build_cells(
    grid: Grid | list[Grid],
    base: dict[str, Any],
    classifier: dict[str, Any] | None = None,
    evaluation: EvalSpec | None = None,
) -> list[Cell]:
    """Every combination of the grid's values applied to ``base`` (train options), validated; names unique.

    ``grid`` may be a list of grids (blocks): their cells are joined. ``base["classifier_seed"]`` (default 0) is
    the classifier seed of cells that do not sweep it; ``classifier["per_seed"]`` judges every cell by the
    classifier whose seed is its training seed (Table 1's protocol over seeds).
    """
    classifier = dict(classifier or {})
    per_seed = bool(classifier.pop("per_seed", False))
    evaluation = evaluation or EvalSpec()
    base = dict(base)
    base_clf_seed = int(base.pop("classifier_seed", 0) or 0)
    blocks = grid if isinstance(grid, list) else [grid]
    if per_seed and any("classifier_seed" in b for b in blocks):
        raise QMAEError("classifier_seed is swept and also tied to the training seed; keep one")
    cells: list[Cell] = []
    seen: dict[str, tuple] = {}
    for block in blocks:
        axes = list(block)
        for combo in itertools.product(*(block[a] for a in axes)):
            values = tuple(zip(axes, combo))
            name = cell_name(values)
            if name in seen:
                raise QMAEError(
                    f"grid cells collide: {_show(seen[name])} and {_show(values)} both get the folder name "
                    f"{name!r} (a repeated value, or values that print the same); remove the duplicate"
                )
            seen[name] = values
            settings, clf_seed = _cell_settings(name, values, base, base_clf_seed)
            clf_seed = settings.seed if per_seed else clf_seed
            spec = ClassifierSpec(image_size=settings.config.image_size, seed=clf_seed, **classifier)
            cells.append(Cell(name, values, settings, spec, evaluation))
    return cells


def _cell_settings(
    name: str, values: tuple[tuple[str, GridValue], ...], base: dict[str, Any], clf_seed: int
) -> tuple[RunSettings, int]:
    """One cell's run settings and classifier seed: the base options with its swept values applied."""
    opts = dict(base)
    for axis, value in values:
        if axis == "patch":
            assert isinstance(value, tuple)
            opts["patch_height"], opts["patch_width"] = value
        elif axis == "classifier_seed":
            clf_seed = int(value)  # type: ignore[arg-type]
        else:
            opts[axis] = value
    try:
        return settings_from_options(opts), clf_seed
    except (ValidationError, ValueError) as exc:
        raise QMAEError(f"grid cell {name} ({_show(values)}) is not valid: {one_line(exc)}") from None


def _show(values: tuple) -> str:
    return ", ".join(f"{a}={v}" for a, v in values) or "no swept values"


# ---------------------------------------------------------------------------------------------------- state
def _read_json(path: Path) -> dict | None:
    """The JSON object in ``path``; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_eval(cell: Cell, out: Path) -> dict | None:
    return _read_json(cell.folder(out) / EVAL_FILE)


def eval_matches(cell: Cell, result: dict) -> bool:
    """Whether an eval.json dict is the evaluation this cell asks for (see the module docstring)."""
    s = cell.settings
    clf = result.get("classifier") or {}
    try:
        config = QMAEConfig(**result["config"])
    except (KeyError, TypeError, ValueError):
        return False
    return (
        result.get("model") == s.model
        and config == s.config
        and result.get("mask_ratio") == s.mask_ratio
        and result.get("finished") is True
        and result.get("step") == s.total_steps
        and result.get("split") == "test"
        and result.get("backend") == "exact"
        and result.get("limit") == cell.evaluation.limit
        and result.get("mask_seed") == cell.evaluation.mask_seed
        and Path(str(clf.get("path", ""))).name == cell.classifier.key
        and bool(result.get("baselines"))
    )


def stored_settings(cell: Cell, out: Path) -> RunSettings | None:
    """The settings in the cell folder's config.json, None without one; a damaged file is a one-line error."""

    if not (cell.folder(out) / CONFIG_FILE).is_file():
        return None
    return read_settings(cell.folder(out))


def judged_by_cached_classifier(cell: Cell, result: dict, out: Path) -> bool:
    """Whether the eval.json was scored by the classifier cached for the cell now: the same clean accuracy (and
    recipe, where recorded) as ``classifiers/<key>/classifier.json``. A retrained classifier (another recipe, or a
    removed folder) makes every cell it judges evaluate again."""
    info = _read_json(cell.classifier.folder(out) / "classifier.json")
    if info is None:
        return False
    judged = result.get("classifier") or {}
    same_recipe = "recipe" not in judged or judged["recipe"] == info.get("recipe")
    return same_recipe and judged.get("clean_test_accuracy") == info.get("test_accuracy")


def is_finished(cell: Cell, out: Path) -> bool:
    result = read_eval(cell, out)
    if result is None or not eval_matches(cell, result) or not judged_by_cached_classifier(cell, result, out):
        return False
    try:
        stored = stored_settings(cell, out)
    except QMAEError:
        return False
    return stored == cell.settings


def check_out_folder(cells: list[Cell], out: Path) -> None:
    """Refuse (one line, nothing written) an --out whose cells or classifiers hold other settings.

    Settings a resume may change (more epochs, another checkpoint interval) are allowed: those cells continue.
    """

    for cell in cells:
        folder = cell.folder(out)
        if folder.exists() and not folder.is_dir():
            raise QMAEError(f"{folder} exists and is not a folder; remove it or pass another --out")
        stored = stored_settings(cell, out)
        if stored is None:
            continue
        diffs = [d for d in settings_differences(stored, cell.settings) if d.split(":")[0] not in RESUMABLE_CHANGES]
        if diffs:
            raise QMAEError(
                f"{folder} was trained with other settings ({'; '.join(diffs)}); pass another --out, or remove "
                f"that folder to train it again"
            )
    for spec in {c.classifier for c in cells}:
        info_path = spec.folder(out) / "classifier.json"
        if not info_path.is_file():
            continue
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise QMAEError(
                f"{info_path} is damaged; remove {spec.folder(out)} to train the classifier again"
            ) from None
        want = {k: v for k, v in spec.settings().items() if k != "limit"} | {"image_size": spec.image_size}
        diffs = setting_diffs(info, want)
        if spec.limit is not None and info.get("n_train") not in (None, spec.limit):
            diffs.append(f"training images: {info.get('n_train')} -> {spec.limit}")
        if diffs:
            raise QMAEError(
                f"the classifier cached in {spec.folder(out)} was trained with other settings ({'; '.join(diffs)}); "
                f"pass another --out or remove that folder"
            )
