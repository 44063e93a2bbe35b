"""Calibration snapshots: schema, round trip, noise model equal to Aer's from the live fake backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from qiskit import QuantumCircuit, transpile
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from qmae_qiskit.cli import main
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware import calibration, noise

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manila_snapshot(tmp_path_factory) -> Path:
    return calibration.write_snapshot(FakeManilaV2(), tmp_path_factory.mktemp("cal"))


def test_snapshot_file_holds_the_backends_numbers(manila_snapshot):
    snap = json.loads(manila_snapshot.read_text())
    b = FakeManilaV2()
    assert manila_snapshot.parent.name == "fake_manila" and manila_snapshot.name.endswith("Z.json")
    assert snap["schema"] == calibration.SCHEMA and snap["schema_version"] == calibration.CalibrationSnapshot.VERSION
    assert snap["num_qubits"] == 5
    assert sorted(map(tuple, snap["coupling_map"])) == sorted(b.coupling_map.get_edges())
    qp = b.target.qubit_properties
    assert [q["t1"] for q in snap["qubits"]] == [p.t1 for p in qp]
    assert [q["frequency"] for q in snap["qubits"]] == [p.frequency for p in qp]
    cx = {tuple(r["qubits"]): r for r in snap["instructions"]["cx"]}
    for qargs, props in b.target["cx"].items():
        assert cx[qargs]["error"] == props.error and cx[qargs]["duration"] == props.duration
    meas = {r["qubits"][0]: r["error"] for r in snap["instructions"]["measure"]}
    assert meas == {q[0]: p.error for q, p in b.target["measure"].items()}
    assert snap["taken_at"].endswith("+00:00") and snap["source"].startswith("qiskit_ibm_runtime.fake_provider")


def test_snapshot_noise_model_equals_from_backend(manila_snapshot):
    assert noise.noise_model(manila_snapshot) == NoiseModel.from_backend(FakeManilaV2())
    assert noise.noise_model(str(manila_snapshot)) == NoiseModel.from_backend(FakeManilaV2())


def test_snapshot_simulates_like_aer_from_backend(manila_snapshot):
    """Exact density-matrix outcome probabilities of a small circuit (with an idle delay) agree."""
    backend = FakeManilaV2()
    qc = QuantumCircuit(3, 3)
    qc.h(0)
    qc.cx(0, 1)
    qc.delay(2000, 1, unit="ns")
    qc.cx(1, 2)
    qc.sx(2)
    qc.measure(range(3), range(3))
    isa = transpile(qc, backend, optimization_level=1, seed_transpiler=1, scheduling_method="alap")

    def probs(sim: AerSimulator) -> np.ndarray:
        c = isa.copy()
        c.remove_final_measurements()
        c.save_density_matrix()
        rho = sim.run(c).result().data()["density_matrix"]
        return np.real(np.diag(np.asarray(rho)))

    ref = probs(AerSimulator.from_backend(backend, method="density_matrix"))
    got = probs(AerSimulator(method="density_matrix", noise_model=noise.noise_model(manila_snapshot)))
    ideal = probs(AerSimulator(method="density_matrix"))
    assert np.allclose(got, ref, atol=1e-12)
    assert not np.allclose(got, ideal, atol=1e-4)  # the model is not a no-op


def test_snapshot_backend_transpiles_like_the_live_one(manila_snapshot):
    sb = calibration.snapshot_backend(manila_snapshot)
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 2)
    qc.cx(1, 2)
    a = transpile(qc, FakeManilaV2(), optimization_level=1, seed_transpiler=4)
    b = transpile(qc, sb, optimization_level=1, seed_transpiler=4)
    assert a.count_ops() == b.count_ops() and a.depth() == b.depth()


def test_cli_snapshot_and_show(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["calibration", "snapshot", "--backend", "fake_manila", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (path,) = (tmp_path / "fake_manila").glob("*.json")
    assert not list(tmp_path.rglob("*.tmp"))
    res = runner.invoke(main, ["calibration", "show", str(path), "--json"])
    assert res.exit_code == 0
    summary = json.loads(res.output)
    errs = sorted(p.error for p in FakeManilaV2().target["measure"].values())
    assert summary["readout_error"]["min"] == errs[0] and summary["readout_error"]["max"] == errs[-1]
    res = runner.invoke(main, ["calibration", "show", str(path)])
    assert "cx error" in res.output and "T1" in res.output


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"schema": "other"}', "not a qmae-qiskit calibration snapshot"),
        ('{"schema": "qmae-qiskit/calibration-snapshot", "schema_version": 99}', "schema version 99"),
    ],
)
def test_bad_snapshot_files_fail_in_one_line(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(QMAEError, match=message):
        noise.noise_model(bad)
    res = CliRunner().invoke(main, ["calibration", "show", str(bad)])
    assert res.exit_code == 2 and message in res.output and res.output.count("\n") == 1
    assert bad.read_text() == content


def test_aer_simulator_has_no_calibration(tmp_path):
    res = CliRunner().invoke(main, ["calibration", "snapshot", "--backend", "aer_simulator", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no calibration" in res.output and not any(tmp_path.iterdir())


def test_committed_torino_snapshot_builds_a_noise_model():
    (path,) = sorted((REPO / "calibration" / "fake_torino").glob("*.json"))[-1:]
    snap = calibration.load_snapshot(path)
    assert snap["backend"] == "fake_torino" and snap["num_qubits"] == 133
    nm = noise.noise_model(path)
    assert {"cz", "sx", "x", "measure"} <= set(nm.noise_instructions)


def test_depth_report_against_a_snapshot_equals_the_live_backend(tmp_path):
    from qiskit_ibm_runtime.fake_provider import FakeGuadalupeV2

    from qmae_qiskit.model.config import QMAEConfig
    from qmae_qiskit.reports import depth

    snap = calibration.write_snapshot(FakeGuadalupeV2(), tmp_path)
    res = CliRunner().invoke(
        main, ["report", "depth", "--backend", str(snap), "--image-size", "4", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    from_snap = json.loads((tmp_path / "fake_guadalupe-O1-L4.json").read_text())
    assert from_snap["backend_spec"] == str(snap)
    live = depth.depth_report(QMAEConfig(image_size=4), FakeGuadalupeV2(), 1, from_snap["seed_transpiler"])
    a, b = depth.comparable(from_snap), depth.comparable(live)
    a.pop("backend_spec"), b.pop("backend_spec")
    assert depth.differences(a, b) == []
    res = CliRunner().invoke(main, ["report", "check", str(tmp_path / "fake_guadalupe-O1-L4.json")])
    assert res.exit_code == 0, res.output
