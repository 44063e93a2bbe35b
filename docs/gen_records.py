"""Build-time page of every record the toolkit writes, generated from the pydantic models (mkdocs-gen-files).

Records are found, not listed: every module of the package is imported and every subclass of
:class:`qmae_qiskit.records.Record` is documented, so a record added anywhere appears here without an edit.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

import mkdocs_gen_files

import qmae_qiskit
from qmae_qiskit.records import Provenance, Record


def all_records() -> list[type[Record]]:
    """Every concrete Record subclass in the package, by schema name."""
    for info in pkgutil.walk_packages(qmae_qiskit.__path__, "qmae_qiskit."):
        if ".cli" not in info.name and not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found: dict[str, type[Record]] = {}
    todo = list(Record.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.SCHEMA != Record.SCHEMA and cls.__module__.startswith("qmae_qiskit."):  # not a shared base
            found[cls.SCHEMA] = cls
    return [found[k] for k in sorted(found)]


def type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation).replace("typing.", "")
    return text.replace("|", "\\|")


def field_table(model: type) -> list[str]:
    rows = ["| field | type | default |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        default = "*required*" if field.is_required() else f"`{field.get_default(call_default_factory=True)!r}`"
        rows.append(f"| `{name}` | `{type_name(field.annotation)}` | {default} |")
    return rows


def record_section(cls: type[Record]) -> list[str]:
    doc = (cls.__doc__ or "").strip()
    schema = json.dumps(cls.model_json_schema(), indent=2, default=str)
    return [
        f"## {cls.WHAT}",
        "",
        f"`{cls.SCHEMA}` version {cls.VERSION} — `{cls.__module__}.{cls.__name__}`",
        "",
        doc,
        "",
        *field_table(cls),
        "",
        '??? note "JSON schema"',
        "    ```json",
        *("    " + line for line in schema.splitlines()),
        "    ```",
        "",
    ]


def page() -> str:
    lines = [
        "# Records",
        "",
        "Every file the toolkit writes about a run is one of these typed records: a pydantic model with "
        '`extra="forbid"`, a `schema` name and `schema_version`, and the shared `provenance` block below, saved '
        "by one atomic codec (temporary file + rename) and read back by one loader that upgrades the previous "
        "version or refuses with one line naming the version it found. This page is generated from the models "
        "when the site is built (`docs/gen_records.py`), so it is always the code's. Provenance never holds an "
        "environment variable, so never a token. Files written by qmae-qiskit 0.1 (the committed `results/`, "
        "`circuits/`, `calibration/`) still load; `tests/test_committed_records.py` loads every committed JSON "
        "through the codec.",
        "",
        "## Provenance (in every record)",
        "",
        *field_table(Provenance),
        "",
    ]
    for cls in all_records():
        lines += record_section(cls)
    return "\n".join(lines)


with mkdocs_gen_files.open("reference/records.md", "w") as fh:
    fh.write(page())
