"""Depth reports: honest numbers, a stage split of the real circuit, repeatable for the same seed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from qiskit import transpile
from qiskit_ibm_runtime.fake_provider import FakeGuadalupeV2, FakeTorino

from qmae_qiskit.cli import main
from qmae_qiskit.model import circuits as C
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.reports import depth

REPO = Path(__file__).resolve().parents[1]
CFG = QMAEConfig(image_size=4)


@pytest.fixture(scope="module")
def report():
    return depth.depth_report(CFG, FakeGuadalupeV2(), optimization_level=1, seed=11)


@pytest.mark.parametrize("loader", [None, "ladder:3"])
def test_stage_split_recomposes_the_real_circuit(loader):
    from qmae_qiskit.model.circuits import inverse_fidelity_circuit

    xm, xr = ("xm", "xr") if loader is None else ("am", "ar")
    for kind, qc in (
        ("training", C.training_circuit(CFG, loader)),
        ("reconstruction", C.reconstruction_circuit(CFG, loader=loader)),
        ("inverse_fidelity", inverse_fidelity_circuit(CFG, loader)[0]),
    ):
        parts = depth.split_stages(qc, depth.stage_sizes(CFG, kind, loader))
        glued = [
            (i.operation.name, tuple(qc.find_bit(q).index for q in i.qubits), tuple(map(str, i.operation.params)))
            for _, p in parts
            for i in p.data
        ]
        real = [
            (i.operation.name, tuple(qc.find_bit(q).index for q in i.qubits), tuple(map(str, i.operation.params)))
            for i in qc.data
        ]
        assert glued == real
        names = [n for n, _ in parts]
        assert names[:4] == ["embedding", "encoder", "trash reset", "decoder"]
        # the encoder stage holds exactly the theta parameters, the embedding only loader angles
        enc = dict(parts)["encoder"]
        assert {p.vector.name for p in enc.parameters} == {"theta"}
        assert {p.vector.name for p in dict(parts)["embedding"].parameters} <= {xm, xr}
        if kind == "inverse_fidelity":
            assert {p.vector.name for p in dict(parts)["inverse embedding"].parameters} == {xr}


def test_whole_numbers_match_an_independent_transpile(report):
    """Same preset level and seed through qiskit.transpile: same counts; ESP recomputed from the target here."""
    backend = FakeGuadalupeV2()
    isa = transpile(C.training_circuit(CFG), backend=backend, optimization_level=1, seed_transpiler=11)
    r = report["circuits"]["training"]
    assert r["transpiled"]["gate_counts"] == {k: v for k, v in sorted(isa.count_ops().items())}
    assert r["transpiled"]["depth"] == isa.depth()
    two_q = [i for i in isa.data if len(i.qubits) == 2]
    assert r["transpiled"]["two_qubit_gates"] == len(two_q)
    # ESP: log-sum of (1 - error) over gates + the ancilla's readout
    target = backend.target
    log_esp = 0.0
    for i in isa.data:
        qargs = tuple(isa.find_bit(q).index for q in i.qubits)
        err = target[i.operation.name][qargs].error or 0.0
        log_esp += math.log1p(-err)
    anc = isa.layout.final_index_layout()[C.training_layout(CFG).ancilla]
    log_esp += math.log1p(-target["measure"][(anc,)].error)
    assert math.isclose(r["estimated_success_probability"], math.exp(log_esp), rel_tol=1e-9)
    assert 0 < r["estimated_success_probability"] < 1
    # the layout covers every virtual qubit with its role
    assert [q["role"] for q in r["layout"]] == C.training_circuit(CFG).metadata["qubit_roles"]


def test_reconstruction_measures_the_data_qubits(report):
    r = report["circuits"]["reconstruction"]
    assert r["transpiled"]["gate_counts"]["measure"] == CFG.n_qubits
    assert len(r["measured_physical_qubits"]) == CFG.n_qubits
    assert r["stages"][-1]["stage"] == "measurement"
    assert r["stages"][-1]["gate_counts"] == {"measure": CFG.n_qubits}
    assert r["stage_totals"]["two_qubit_gates"] == sum(s["two_qubit_gates"] for s in r["stages"])


def test_same_seed_regenerates_equal_and_other_seed_need_not(report):
    again = depth.depth_report(CFG, FakeGuadalupeV2(), optimization_level=1, seed=11)
    assert depth.differences(depth.comparable(report), depth.comparable(again)) == []
    other = depth.comparable(depth.depth_report(CFG, FakeGuadalupeV2(), optimization_level=1, seed=12))
    assert other["seed_transpiler"] == 12  # differences() sees at least the seed
    assert depth.differences(depth.comparable(report), other)


def test_cli_writes_md_and_json_and_check_passes(tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "report",
            "depth",
            "--backend",
            "fake_guadalupe",
            "--optimization-level",
            "3",
            "--image-size",
            "4",
            "--transpiler-seed",
            "3",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    js, md = tmp_path / "fake_guadalupe-O3-L4.json", tmp_path / "fake_guadalupe-O3-L4.md"
    rep = json.loads(js.read_text())
    assert rep["optimization_level"] == 3 and rep["seed_transpiler"] == 3
    text = md.read_text()
    assert "Estimated success probability" in text and "| stage: encoder |" in text
    assert str(rep["circuits"]["training"]["transpiled"]["depth"]) in text
    res = runner.invoke(main, ["report", "check", str(js)])
    assert res.exit_code == 0, res.output
    # a tampered number is caught
    rep["circuits"]["training"]["transpiled"]["depth"] += 1
    js.write_text(json.dumps(rep))
    res = runner.invoke(main, ["report", "check", str(js)])
    assert res.exit_code == 2 and "transpiled.depth" in res.output


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main, ["report", "depth", "--backend", "fake_manila", "--image-size", "4", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "needs 10 qubits" in res.output and res.output.count("\n") == 1
    res = runner.invoke(main, ["report", "depth", "--backend", "fake_fezz", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "fake_fez" in res.output
    res = runner.invoke(main, ["report", "depth", "--backend", "fake_fez", "--optimization-level", "4"])
    assert res.exit_code != 0
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("backend", ["fake_torino", "fake_fez", "fake_sherbrooke"])
@pytest.mark.parametrize("level", [1, 3])
def test_committed_reports_exist_and_are_16x16(backend, level):
    js = REPO / "circuits" / f"{backend}-O{level}.json"
    rep = depth.load_report(js)
    assert rep["backend"] == backend and rep["optimization_level"] == level
    assert rep["config"]["image_size"] == 16
    assert (REPO / "circuits" / f"{backend}-O{level}.md").is_file()
    for r in rep["circuits"].values():
        assert r["transpiled"]["depth"] > r["logical"]["depth"]


@pytest.mark.slow
def test_committed_torino_report_regenerates_equal():
    """The 16x16 regeneration check on one committed report (the others: `qmae-qiskit report check FILE`)."""
    stored = depth.load_report(REPO / "circuits" / "fake_torino-O1.json")
    from qmae_qiskit.records import package_versions

    if stored["provenance"]["versions"]["qiskit"] != package_versions()["qiskit"]:
        pytest.skip("committed report was made with another qiskit version")
    again = depth.regenerate(stored, FakeTorino())
    assert depth.differences(depth.comparable(stored), depth.comparable(again)) == []


# ------------------------------------------------------------------------------------ approximate loaders
def test_ladder_report_numbers_are_the_real_circuits():
    """Whole counts equal an independent qiskit.transpile of the ladder circuit; the stages add up per stage."""
    backend = FakeGuadalupeV2()
    rep = depth.depth_report(CFG, backend, optimization_level=1, seed=11, loader="ladder:2")
    assert rep["loader"]["label"] == "ladder:2" and rep["loader"]["cnots_per_loader"] == 6
    qc, _ = C.inverse_fidelity_circuit(CFG, "ladder:2")
    isa = transpile(qc, backend=backend, optimization_level=1, seed_transpiler=11)
    r = rep["circuits"]["inverse_fidelity"]
    assert r["transpiled"]["two_qubit_gates"] == sum(1 for i in isa.data if len(i.qubits) == 2)
    assert r["logical"]["gate_counts"]["cx"] == 2 * 6 + 3 * CFG.n_pairs * 2  # two loaders, U and U-dagger
    stages = {s["stage"]: s for s in r["stages"]}
    assert stages["embedding"]["gate_counts"].get("cx", 0) + stages["embedding"]["gate_counts"].get("ecr", 0) >= 6
    for key in ("depth", "two_qubit_depth", "two_qubit_gates", "size"):
        assert r["stage_totals"][key] == sum(s[key] for s in r["stages"])
    exact = depth.depth_report(CFG, backend, optimization_level=1, seed=11)
    assert "loader" not in exact  # reports made before loaders existed still regenerate equal


def test_cli_loader_report_checks_and_bad_loader_is_one_line(tmp_path):
    runner = CliRunner()
    args = ["report", "depth", "--backend", "fake_guadalupe", "--image-size", "4", "--out", str(tmp_path)]
    res = runner.invoke(main, [*args, "--loader", "ladder:2"])
    assert res.exit_code == 0, res.output
    js = tmp_path / "fake_guadalupe-O1-L4-ladder2.json"
    assert "ladder:2" in (tmp_path / "fake_guadalupe-O1-L4-ladder2.md").read_text()
    res = runner.invoke(main, ["report", "check", str(js)])
    assert res.exit_code == 0, res.output
    for bad in (["--loader", "ladder:x"], ["--loader", "ladder:2", "--two-qubit-budget", "100"]):
        out = tmp_path / "bad"
        res = runner.invoke(main, [*args[:-1], str(out), *bad])
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert not out.exists()


def test_budget_picks_the_largest_ladder_that_fits():
    from qmae_qiskit.errors import QMAEError
    from qmae_qiskit.reports.loader_budget import spec_for_budget

    backend = FakeGuadalupeV2()

    def count(loader):
        qc, _ = C.inverse_fidelity_circuit(CFG, loader)
        isa = transpile(qc, backend=backend, optimization_level=1, seed_transpiler=11)
        return sum(1 for i in isa.data if len(i.qubits) == 2)

    exact = count(None)
    assert spec_for_budget(CFG, backend, exact, 1, 11).spec.is_exact
    budget = count("ladder:1") + 1
    assert budget < exact  # 4x4: the exact loader costs 14 CNOTs, ladder:1 three
    choice = spec_for_budget(CFG, backend, budget, 1, 11)
    assert not choice.spec.is_exact and choice.two_qubit_gates <= budget
    assert choice.two_qubit_gates == count(choice.spec)
    bigger = [label for label in choice.tried if label.startswith("ladder:") and int(label[7:]) > choice.spec.layers]
    assert all(choice.tried[label] > budget for label in bigger)
    with pytest.raises(QMAEError, match="raise --two-qubit-budget to at least"):
        spec_for_budget(CFG, backend, count("ladder:0") - 1, 1, 11)


def test_report_depth_prints_its_lines_then_each_file_written_or_only_the_record_as_json(tmp_path):
    """cli.options.echo_written: the text (one line per circuit, from the written record), then a 'wrote' line
    per file that exists; with --json only the record, the same one the file holds."""
    args = ["report", "depth", "--backend", "aer_simulator", "--image-size", "4"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    report = json.loads((tmp_path / "t" / "aer_simulator-O1-L4.json").read_text())
    assert len(lines) == len(report["circuits"]) + 2
    for line, (kind, r) in zip(lines, report["circuits"].items(), strict=False):
        assert line.split()[0] == kind and f"depth {r['transpiled']['depth']}," in line
    written = [Path(line.removeprefix("wrote ")) for line in lines[-2:]]
    assert all(line.startswith("wrote ") for line in lines[-2:]) and all(p.is_file() for p in written)
    assert {p.suffix for p in written} == {".json", ".md"}
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "j"), "--json"])
    assert res.exit_code == 0 and "wrote" not in res.stdout
    assert json.loads(res.stdout) == json.loads((tmp_path / "j" / "aer_simulator-O1-L4.json").read_text())
