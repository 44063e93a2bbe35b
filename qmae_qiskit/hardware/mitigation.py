"""Error-mitigation options, validated by qiskit-ibm-runtime's own option models before anything runs.

``--estimator-options`` takes ``KEY=VALUE,...`` (dotted keys reach nested options:
``resilience.zne.noise_factors=[1,3,5]``) or a JSON object, plus the short names of earlier versions
(``twirling_gates``, ``dd_sequence``, ...). The result is the runtime's ``options_models.EstimatorOptions``
(``extra="forbid"``), so a misspelt option fails here with the runtime's own message. Twirling and dynamical
decoupling also reach the Sampler (``SamplerOptions``, which has no resilience). Readout correction of the
Sampler's counts is ours (``readout_mitigation=mthree``), since the runtime Sampler has none.

Unlike the runtime, whose default is resilience level 1, nothing is mitigated unless asked: a number reported
as raw is raw.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from qiskit_ibm_runtime.options_models import EstimatorOptions, SamplerOptions

from qmae_qiskit.errors import QMAEError, one_line

# short names of qmae-qiskit 0.1 -> dotted runtime paths
ALIASES = {
    "measure_mitigation": "resilience.measure_mitigation",
    "zne_mitigation": "resilience.zne_mitigation",
    "pec_mitigation": "resilience.pec_mitigation",
    "zne_noise_factors": "resilience.zne.noise_factors",
    "zne_extrapolator": "resilience.zne.extrapolator",
    "zne_amplifier": "resilience.zne.amplifier",
    "twirling_gates": "twirling.enable_gates",
    "twirling_measure": "twirling.enable_measure",
    "twirling_randomizations": "twirling.num_randomizations",
    "twirling_shots_per_randomization": "twirling.shots_per_randomization",
    "twirling_strategy": "twirling.strategy",
    "dynamical_decoupling": "dynamical_decoupling.enable",
    "dd_sequence": "dynamical_decoupling.sequence_type",
}
SHARED_WITH_SAMPLER = ("twirling", "dynamical_decoupling")
RAW = {"resilience_level": 0}
READOUT = ("none", "mthree")
# what the runtime options cannot do off a real device (they need a learned layer noise model)
DEVICE_ONLY = {"resilience.pec_mitigation": True, "resilience.zne.amplifier": "pea"}


class Mitigation(BaseModel):
    """What a run asks for: the runtime Estimator's options (nested dict, as given) and the Sampler's readout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    estimator: dict[str, Any] = Field(default_factory=dict, description="nested EstimatorOptions as given")
    readout: Literal["none", "mthree"] = "none"

    def estimator_options(
        self, shots: int | None = None, seed: int | None = None, rep_delay: float | None = None
    ) -> EstimatorOptions:
        """The runtime's EstimatorOptions: raw (level 0) unless asked, with shots, simulator seed and the
        repetition delay (``execution.rep_delay``; None: the backend's default)."""
        merged = _merge(_merge(dict(RAW), self.estimator), _run_options(shots, seed, rep_delay))
        return _validate(EstimatorOptions, merged, "estimator")

    def sampler_options(
        self, shots: int | None = None, seed: int | None = None, rep_delay: float | None = None
    ) -> SamplerOptions:
        """The runtime's SamplerOptions: twirling and dynamical decoupling as for the Estimator."""
        shared = {k: v for k, v in self.estimator.items() if k in SHARED_WITH_SAMPLER}
        return _validate(SamplerOptions, _merge(shared, _run_options(shots, seed, rep_delay)), "sampler")

    @property
    def is_raw(self) -> bool:
        """True when the Estimator applies nothing (level 0 and no explicit technique) and readout is raw."""
        opts = self.estimator_options()
        r = opts.resilience
        twirl = opts.twirling
        return (
            opts.resilience_level == 0
            and not r.measure_mitigation
            and not r.zne_mitigation
            and not r.pec_mitigation
            and not twirl.enable_gates
            and not twirl.enable_measure
            and not opts.dynamical_decoupling.enable
            and self.readout == "none"
        )

    @property
    def reads_each_shot(self) -> bool:
        """True when an Estimator value is an average of one reading per shot, at most rescaled for readout (TREX):
        raw, TREX, measurement or gate twirling (each shot of a twirled circuit is still one reading of the same
        projector, and averaging over randomizations stratifies the shots, so the binomial error bounds it from
        above); not ZNE or PEC, whose estimates extrapolate or reweight several circuits' averages."""
        opts = self.estimator_options()
        r = opts.resilience
        return opts.resilience_level in (0, 1) and not (r.zne_mitigation or r.pec_mitigation)

    @property
    def rescales_readout(self) -> bool:
        """True when the Estimator divides each term by its measured readout fidelity (TREX: level 1, or
        ``resilience.measure_mitigation``), which spreads each shot's reading beyond [0, 1]."""
        opts = self.estimator_options()
        return opts.resilience_level == 1 or bool(opts.resilience.measure_mitigation)

    def describe(self) -> str:
        """A short label: 'raw', or the options given."""
        parts = [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in _flatten(self.estimator).items()]
        if self.readout != "none":
            parts.append(f"readout={self.readout}")
        return ",".join(parts) or "raw"

    def check_runnable(self, where: str, device: bool) -> None:
        """Refuse what ``where`` cannot apply: anything on the exact path, learned-noise methods off a device."""
        if where == "exact":
            if self.estimator or self.readout != "none":
                raise QMAEError(
                    "the exact backend has no noise to mitigate; drop --estimator-options and "
                    "--readout-mitigation, or pick a noisy backend (a fake device, a calibration file)"
                )
            return
        if not device:
            flat = _flatten(self.estimator)
            for key, value in DEVICE_ONLY.items():
                if flat.get(key) == value:
                    raise QMAEError(
                        f"{key}={value} needs a noise model learned on a real device; offline use "
                        "resilience_level 1 or 2, zne_mitigation, twirling or dynamical decoupling"
                    )


def _run_options(shots: int | None, seed: int | None, rep_delay: float | None) -> dict[str, Any]:
    """The options every job of a run shares, whatever its mitigation: shots, simulator seed, repetition delay."""
    out: dict[str, Any] = {}
    if shots is not None:
        out["default_shots"] = int(shots)
    if seed is not None:
        out["simulator"] = {"seed_simulator": int(seed)}
    if rep_delay is not None:
        out["execution"] = {"rep_delay": float(rep_delay)}
    return out


def _validate(model: type[EstimatorOptions] | type[SamplerOptions], options: dict[str, Any], which: str):
    try:
        return model(**options)
    except (ValidationError, ValueError, TypeError) as exc:
        raise QMAEError(
            f"bad {which} option: {one_line(exc)} (see qiskit_ibm_runtime.options_models."
            f"{model.__name__}; top-level options: {', '.join(model.model_fields)})"
        ) from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in nested.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _set(nested: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node = nested
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise QMAEError(f"option {path!r} conflicts with {key}={child!r}; give one of them")
        node = child
    node[keys[-1]] = value


def _value(text: str) -> Any:
    """A command-line value: JSON where it parses (numbers, [lists], true/false/null), else the plain string."""
    raw = text.strip()
    low = raw.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _split_items(text: str) -> list[str]:
    """Split on commas outside brackets, so ``noise_factors=[1,3,5]`` stays one item."""
    items, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [i for i in (x.strip() for x in items) if i]


def parse_estimator_options(text: str | None) -> dict[str, Any]:
    """``'resilience_level=1,twirling_gates=true'``, dotted keys or a JSON object -> nested options (validated)."""
    if text is None or not text.strip():
        return {}
    text = text.strip()
    nested: dict[str, Any] = {}
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QMAEError(f"estimator options are not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(raw, dict):
            raise QMAEError("estimator options JSON must be an object")
        for key, value in raw.items():
            if isinstance(value, dict):
                nested = _merge(nested, {key: value})
            else:
                _set(nested, ALIASES.get(key) or key, value)
    else:
        for item in _split_items(text):
            if "=" not in item:
                raise QMAEError(
                    f"estimator option {item!r} is not KEY=VALUE; e.g. 'resilience_level=1', "
                    "'resilience.zne.noise_factors=[1,3,5]', 'twirling_gates=true,dd_sequence=XY4'"
                )
            key, value = item.split("=", 1)
            key = key.strip().replace("-", "_")
            _set(nested, ALIASES.get(key) or key, _value(value))
    dd = nested.get("dynamical_decoupling")
    if isinstance(dd, dict) and "sequence_type" in dd and "enable" not in dd:
        dd["enable"] = True  # naming a sequence asks for decoupling
    Mitigation(estimator=nested).estimator_options()  # validates with the runtime's model; one line on error
    Mitigation(estimator=nested).sampler_options()
    return nested


def parse_mitigation(estimator_options: str | None, readout: str = "none") -> Mitigation:
    """The CLI's two mitigation options as one validated :class:`Mitigation`."""
    if readout not in READOUT:
        raise QMAEError(f"unknown readout mitigation {readout!r}; use one of {', '.join(READOUT)}")
    return Mitigation(estimator=parse_estimator_options(estimator_options), readout=readout)
