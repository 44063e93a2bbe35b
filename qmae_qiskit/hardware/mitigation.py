"""Error-mitigation options for the runtime primitives, validated before anything is submitted.

A flat pydantic model (``extra="forbid"``: a misspelt option is an error, not silently ignored) that turns into
the nested option dicts of qiskit-ibm-runtime's Estimator and Sampler. The Sampler has no resilience (ZNE,
measurement mitigation), so only twirling and dynamical decoupling reach it. Options left unset are not sent,
so the service's defaults apply.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qmae_qiskit.errors import QMAEError, one_line


class MitigationOptions(BaseModel):
    """Resilience level, twirling and dynamical decoupling for IBM jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resilience_level: Literal[0, 1, 2] | None = Field(
        None, description="Estimator only: 0 none, 1 measurement (TREX), 2 + ZNE"
    )
    measure_mitigation: bool | None = Field(None, description="Estimator: twirled readout error extinction")
    zne_mitigation: bool | None = Field(None, description="Estimator: zero-noise extrapolation")
    twirling_gates: bool | None = Field(None, description="Pauli-twirl two-qubit gates")
    twirling_measure: bool | None = Field(None, description="twirl measurements")
    twirling_randomizations: int | Literal["auto"] | None = Field(None, description="number of twirled copies")
    twirling_strategy: Literal["active", "active-accum", "active-circuit", "all"] | None = None
    dynamical_decoupling: bool | None = Field(None, description="insert DD sequences on idle qubits")
    dd_sequence: Literal["XX", "XpXm", "XY4"] | None = None

    @model_validator(mode="after")
    def _check(self) -> MitigationOptions:
        r = self.twirling_randomizations
        if isinstance(r, int) and r < 1:
            raise ValueError(f"twirling_randomizations must be a positive integer or 'auto', got {r}")
        if self.dd_sequence is not None and self.dynamical_decoupling is False:
            raise ValueError("dd_sequence is set but dynamical_decoupling is false; drop one of them")
        return self

    def _twirling(self) -> dict[str, Any]:
        tw = {
            "enable_gates": self.twirling_gates,
            "enable_measure": self.twirling_measure,
            "num_randomizations": self.twirling_randomizations,
            "strategy": self.twirling_strategy,
        }
        return {k: v for k, v in tw.items() if v is not None}

    def _dd(self) -> dict[str, Any]:
        enable = (
            self.dynamical_decoupling
            if self.dynamical_decoupling is not None
            else (True if self.dd_sequence is not None else None)
        )
        dd = {"enable": enable, "sequence_type": self.dd_sequence}
        return {k: v for k, v in dd.items() if v is not None}

    def sampler_options(self) -> dict[str, Any]:
        """Nested options for ``SamplerV2`` (twirling and dynamical decoupling only)."""
        out: dict[str, Any] = {}
        if tw := self._twirling():
            out["twirling"] = tw
        if dd := self._dd():
            out["dynamical_decoupling"] = dd
        return out

    def estimator_options(self) -> dict[str, Any]:
        """Nested options for ``EstimatorV2``."""
        out = self.sampler_options()
        if self.resilience_level is not None:
            out["resilience_level"] = self.resilience_level
        res = {
            k: v
            for k, v in (("measure_mitigation", self.measure_mitigation), ("zne_mitigation", self.zne_mitigation))
            if v is not None
        }
        if res:
            out["resilience"] = res
        return out


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    try:
        return int(low)
    except ValueError:
        return text.strip()


def parse_options(text: str | None) -> MitigationOptions:
    """``'resilience_level=1,twirling_gates=true'`` or a JSON object -> validated options (one line on error)."""
    if text is None or not text.strip():
        return MitigationOptions()
    text = text.strip()
    try:
        if text.startswith("{"):
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise QMAEError("mitigation options JSON must be an object")
        else:
            raw = {}
            for item in text.split(","):
                if "=" not in item:
                    raise QMAEError(
                        f"mitigation option {item.strip()!r} is not KEY=VALUE; e.g. "
                        "'resilience_level=1,twirling_gates=true,dd_sequence=XY4'"
                    )
                key, value = item.split("=", 1)
                raw[key.strip().replace("-", "_")] = _value(value)
        return MitigationOptions(**raw)
    except json.JSONDecodeError as exc:
        raise QMAEError(f"mitigation options are not valid JSON ({exc})") from None
    except ValidationError as exc:
        allowed = ", ".join(MitigationOptions.model_fields)
        raise QMAEError(f"bad mitigation option: {one_line(exc)} (options: {allowed})") from None
