"""The loader frontier: each row's fidelities are those of a standalone fit, its gate counts those of a transpile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from qiskit import transpile
from qiskit_ibm_runtime.fake_provider import FakeGuadalupeV2

from qmae_qiskit.cli import main
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.model import circuits as C
from qmae_qiskit.model.approx_loader import fit_loader
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.records import load_record
from qmae_qiskit.reports.loader_frontier import FrontierSettings, LoaderFrontier, loader_frontier

REPO = Path(__file__).resolve().parents[1]
CFG = QMAEConfig(image_size=4)


def test_rows_match_standalone_fits_and_transpiles():
    g = torch.Generator().manual_seed(4)
    clean = torch.rand(4, 16, generator=g, dtype=torch.float64)
    masked = clean.clone()
    masked[:, :4] = -0.2
    backend = FakeGuadalupeV2()
    settings = FrontierSettings((1, 3), optimization_level=1, seed=5, stage_iter=15)
    fr = loader_frontier(CFG, masked, clean, [backend], settings)
    assert [r.loader for r in fr.rows] == ["exact", "ladder:1", "ladder:3"]
    assert fr.rows[0].masked.min == 1.0 and fr.rows[0].cnots_per_loader == 14
    for row in fr.rows:
        qc, _ = C.inverse_fidelity_circuit(CFG, row.loader)
        isa = transpile(qc, backend=backend, optimization_level=1, seed_transpiler=5)
        assert row.two_qubit_gates[backend.name] == sum(1 for i in isa.data if len(i.qubits) == 2)
        if row.loader != "exact":
            for which, x in (("masked", masked), ("clean", clean)):
                alone = fit_loader(row.loader, x, stage_iter=15, final_iter=15).fidelity.numpy()
                np.testing.assert_allclose(getattr(row, which).per_image, alone, atol=1e-12)
                assert getattr(row, which).mean == pytest.approx(alone.mean(), abs=1e-12)
    with pytest.raises(QMAEError, match="all even or all odd"):
        FrontierSettings((1, 2))


def test_cli_writes_a_record_for_a_trained_run(tmp_path, mnist_dir):
    res = CliRunner().invoke(
        main,
        [
            "report",
            "loaders",
            str(REPO / "results" / "qmae-m25"),
            "--backend",
            "fake_torino",
            "--layers",
            "0",
            "--images",
            "2",
            "--stage-iter",
            "3",
            "--optimization-level",
            "1",
            "--data-dir",
            str(mnist_dir),
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    fr = load_record(LoaderFrontier, tmp_path / "loader-frontier-L16.json")
    assert fr.n_images == 2 and [r.loader for r in fr.rows] == ["exact", "ladder:0"]
    assert 0 < fr.rows[1].clean.min <= fr.rows[1].clean.mean < 1
    assert "| ladder:0 | 0 |" in (tmp_path / "loader-frontier-L16.md").read_text()
    bad = CliRunner().invoke(main, ["report", "loaders", "x", "--backend", "fake_torino", "--layers", "a,b"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1


def test_committed_frontier_reads_and_its_gate_counts_regenerate():
    from qiskit_ibm_runtime.fake_provider import FakeTorino

    from qmae_qiskit.reports.loader_budget import fidelity_circuit_two_qubit_gates

    fr = load_record(LoaderFrontier, REPO / "circuits" / "loader-frontier-L16.json")
    assert fr.n_images == 100 and fr.config == QMAEConfig()
    rows = {r.loader: r for r in fr.rows}
    for label in ("exact", "ladder:12"):
        assert rows[label].two_qubit_gates["fake_torino"] == fidelity_circuit_two_qubit_gates(
            QMAEConfig(), FakeTorino(), label, fr.optimization_level, fr.seed_transpiler
        )
    for r in fr.rows:
        assert r.masked.mean == pytest.approx(np.mean(r.masked.per_image), abs=1e-12)
        assert len(r.clean.per_image) == 100
