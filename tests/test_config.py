import pytest
from pydantic import ValidationError

from qmae_qiskit.model.config import QMAEConfig


def test_paper_default():
    cfg = QMAEConfig()
    assert (cfg.image_size, cfg.n_qubits, cfg.latent_qubits, cfg.trash_qubits) == (16, 8, 7, 1)
    assert (cfg.patch_height, cfg.patch_width) == (8, 8)
    assert cfg.n_circuit_qubits == 18


@pytest.mark.parametrize("L", [4, 8, 16, 32])
def test_parameter_counts_follow_eq3_eq7(L):
    cfg = QMAEConfig(image_size=L)
    n = cfg.n_qubits
    assert 2**n == L * L
    assert cfg.n_theta == n * (n - 1) // 2 * 15
    assert cfg.n_params_qmae == cfg.n_theta + cfg.patch_height * cfg.patch_width


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"image_size": 12}, "image_size"),
        ({"image_size": 16, "latent_qubits": 8}, "latent_qubits"),
        ({"image_size": 16, "latent_qubits": 0}, "latent_qubits"),
        ({"patch_height": 5}, "patch_height"),
        ({"patch_width": 32}, "patch_width"),
        ({"trash_reset": "measure"}, "trash_reset"),
        ({"imagesize": 16}, "imagesize"),
    ],
)
def test_bad_configs_raise_value_error(kwargs, words):
    with pytest.raises(ValueError, match=words):
        QMAEConfig(**kwargs)


def test_config_is_frozen():
    cfg = QMAEConfig()
    with pytest.raises(ValidationError):
        cfg.image_size = 8  # type: ignore[misc]
