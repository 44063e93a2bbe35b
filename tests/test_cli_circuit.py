"""`qmae-qiskit circuit`: exported files, the bound instance's stated fidelity, one-line errors."""

import json

import click
import pytest
from click.testing import CliRunner
from qiskit import qasm3, qpy
from qiskit.quantum_info import Statevector

from qmae_qiskit.cli import main
from qmae_qiskit.model.circuits import fidelity_observable


def test_bind_seed_json_fidelity_is_what_statevector_gives(tmp_path):
    res = CliRunner().invoke(main, ["circuit", "--bind-seed", "7", "--json", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    train = report["circuits"]["training"]
    assert train["num_qubits"] == 18 and train["num_parameters"] == 420 + 2 * 255
    assert report["circuits"]["reconstruction"]["gate_counts"]["measure"] == 8
    record_path = next(f for f in report["bound"]["files"] if f.endswith(".json"))
    record = json.loads(open(record_path).read())
    qpy_path = next(f for f in report["bound"]["files"] if f.endswith(".qpy"))
    with open(qpy_path, "rb") as fh:
        bound = qpy.load(fh)[0]
    assert bound.num_parameters == 0
    obs = fidelity_observable(bound.num_qubits, record["ancilla"])
    assert Statevector(bound).expectation_value(obs).real == pytest.approx(record["fidelity"], abs=1e-10)
    qasm_path = next(f for f in report["bound"]["files"] if f.endswith(".qasm"))
    again = qasm3.loads(open(qasm_path).read())
    assert Statevector(again).expectation_value(obs).real == pytest.approx(record["fidelity"], abs=1e-10)


def test_different_seeds_give_different_instances(tmp_path):
    fids = []
    for seed in (1, 2):
        res = CliRunner().invoke(
            main, ["circuit", "--image-size", "4", "--bind-seed", str(seed), "--json", "--out", str(tmp_path)]
        )
        fids.append(json.loads(res.output)["bound"]["fidelity"])
    assert fids[0] != fids[1]


def test_text_output_names_files(tmp_path):
    res = CliRunner().invoke(main, ["circuit", "--image-size", "8", "--out", str(tmp_path)])
    assert res.exit_code == 0
    assert "14 qubits" in res.output and "wrote" in res.output
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".qasm", ".qasm", ".qpy", ".qpy"]


@pytest.mark.parametrize("args", [["--image-size", "12"], ["--latent-qubits", "8"], ["--patch-width", "3"]])
def test_bad_configuration_is_one_line_and_nonzero(tmp_path, args):
    res = CliRunner().invoke(main, ["circuit", "--out", str(tmp_path), *args])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in res.output
    assert not any(tmp_path.iterdir())  # nothing written


def _all_commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, (*prefix, name))


def test_every_command_has_help():
    runner = CliRunner()
    assert runner.invoke(main, ["--help"]).exit_code == 0
    for path in _all_commands(main):
        res = runner.invoke(main, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        assert "Usage:" in res.output


def test_committed_export_is_current_and_states_its_fidelity():
    """circuits/ holds `qmae-qiskit circuit --bind-seed 7`: the bound QPY gives the JSON's fidelity, and today's
    builder and exact simulator still produce that same instance."""
    from pathlib import Path

    from qmae_qiskit.export import random_instance
    from qmae_qiskit.model.config import QMAEConfig

    folder = Path(__file__).resolve().parents[1] / "circuits"
    record = json.loads((folder / "qmae_training_L16_k7_swap_seed7.json").read_text())
    with open(folder / "qmae_training_L16_k7_swap_seed7.qpy", "rb") as fh:
        bound = qpy.load(fh)[0]
    obs = fidelity_observable(bound.num_qubits, record["ancilla"])
    assert Statevector(bound).expectation_value(obs).real == pytest.approx(record["fidelity"], abs=1e-10)
    assert random_instance(QMAEConfig(), 7).fidelity == pytest.approx(record["fidelity"], abs=1e-12)
