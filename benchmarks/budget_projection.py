"""What a larger budget (or fewer images) would buy a study: the allocation ``study noise --qpu-budget`` would choose,
and its predicted error, with the noise model taken from a finished study's own calibration fit instead of a
1,000-shot pilot (whose scatter estimate is often zero). Only the calibration images' fit and the record's QPU plan
are read, never an evaluated image's exact value.

    python benchmarks/budget_projection.py \
        results/hardware/budget600-scheduled/L16-images100-1800s/study-fake_fez-L16.json \
        --images 100 --images 50 --budget 600 --budget 1200 --budget 1800
"""

from __future__ import annotations

import json
from typing import Any

import click

from qmae_qiskit.hardware.qpu_time import JOB_OVERHEAD_SECONDS
from qmae_qiskit.study.budget import CostModel, NoiseModel, allocate


def cost_model(plan: dict[str, Any]) -> CostModel:
    """Seconds per shot per row of each role, and the fixed per-shot part (mthree's calibration circuits), from a
    record's QPU plan: a role's per-row items are its image circuits, its one-circuit items the fixed part."""
    per_row: dict[str, float] = {}
    fixed: dict[str, float] = {}
    for item in plan["items"]:
        per_shot = item["duration_s"] + item["rep_delay_s"]
        if item["circuits"] > 2:
            per_row[item["role"]] = per_shot
        else:
            fixed[item["role"]] = fixed.get(item["role"], 0.0) + per_shot
    return CostModel(per_row, {r: fixed.get(r, 0.0) for r in per_row}, JOB_OVERHEAD_SECONDS)


def noise_models(record: dict[str, Any]) -> dict[bool, NoiseModel]:
    """{references: model} from the judged method's fits, per-shot variance scaled by the record's shots."""
    fits, shots = record["fits"][record["verdict"]["method"]], record["spec"]["shots"]
    out = {}
    f = fits["fidelity"]
    out[False] = NoiseModel(f["slope"], f["scatter_std"] ** 2, (f["shot_std"] or 0.0) ** 2 * shots, 2)
    if "fidelity_with_reference" in fits:
        r = fits["fidelity_with_reference"]
        out[True] = NoiseModel(r["a"], r["scatter_std"] ** 2, (r["shot_std"] or 0.0) ** 2 * shots, 4)
    return out


@click.command()
@click.argument("record", type=click.Path(exists=True, dir_okay=False))
@click.option("--images", "images", type=int, multiple=True, default=[100])
@click.option("--budget", "budgets", type=float, multiple=True, default=[600.0, 1200.0, 1800.0])
@click.option("--pilot-seconds", type=float, default=0.0, help="QPU seconds spent before the study (a pilot).")
def main(record: str, images: tuple[int, ...], budgets: tuple[float, ...], pilot_seconds: float) -> None:
    raw = json.loads(open(record).read())
    costs, models = cost_model(raw["qpu_plan"]), noise_models(raw)
    for n in images:
        for b in budgets:
            a = allocate(b, n, costs, models, spent=pilot_seconds)
            row = {k: a[k] for k in ("shots", "calibration_images", "references", "qpu_seconds")}
            row |= {"images": n, "budget": b, "std": round(a["predicted_std"], 4)}
            row["mean_abs_error"] = round(a["predicted_mean_abs_error"], 4)
            click.echo(json.dumps(row))


if __name__ == "__main__":
    main()
