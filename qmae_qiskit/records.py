"""One codec for every record the toolkit writes: typed, versioned, with one provenance block, saved atomically.

Each record type is a pydantic model (``extra="forbid"``: an unknown field is an error, not silently dropped)
that names its ``schema`` and ``schema_version`` as class variables and carries a :class:`Provenance` (package
versions, git commit if any, command line, UTC time). :func:`save_record` writes it with the atomic JSON writer;
:func:`load_record` reads it back, upgrades an older version through the type's ``upgrade`` hook, and refuses
anything else with one line naming the file, the version found and the versions this code reads.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qmae_qiskit.errors import QMAEError, one_line
from qmae_qiskit.io import atomic_write_json, read_json

PACKAGES = ("qmae-qiskit", "qiskit", "qiskit-aer", "qiskit-ibm-runtime", "qiskit-machine-learning", "torch", "numpy")


def utc_now() -> str:
    """UTC time to the second, ISO 8601: the one time format of every record."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages whose behaviour a record's numbers depend on."""
    out: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the source checkout this package runs from (None for an installed wheel or no git)."""
    here = Path(__file__).resolve().parent
    if not (here.parent / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(here.parent), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or len(commit) != 40:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(here.parent), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    ).stdout.strip()
    return commit + ("+dirty" if dirty else "")


def command_line() -> str:
    """How this process was started, program name shortened (never an environment variable, so no token)."""
    argv = list(sys.argv) or ["python"]
    argv[0] = os.path.basename(argv[0])
    return " ".join(argv)


class Provenance(BaseModel):
    """Where a record came from: enough to rerun it and to know which code made its numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    created_at: str = Field(default_factory=utc_now)
    command: str | None = Field(default_factory=command_line)
    git_commit: str | None = Field(default_factory=git_commit)
    versions: dict[str, str | None] = Field(default_factory=package_versions)
    python: str = Field(default_factory=platform.python_version)


class Record(BaseModel):
    """Base of every typed record: ``schema`` + ``schema_version`` + ``provenance`` + the type's own fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    SCHEMA: ClassVar[str] = "qmae-qiskit/record"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "record"  # how an error message names it
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ()
    """Fields added after records of this type were committed: left out of the JSON while None or empty, so
    those records (and new ones without the feature) write back unchanged. Each class names its own; a record
    omits those of every class it derives from, mixins included (:meth:`omitted_when_empty`)."""

    record_schema: str = Field("", alias="schema")
    schema_version: int = 0
    provenance: Provenance = Field(default_factory=Provenance)

    def model_post_init(self, context: Any) -> None:
        if not self.record_schema:
            self.record_schema = self.SCHEMA
        if not self.schema_version:
            self.schema_version = self.VERSION

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
        """An older version's raw JSON turned into this version's, or None when it cannot be read."""
        return None

    @classmethod
    def omitted_when_empty(cls) -> frozenset[str]:
        """The ``OMITTED_WHEN_EMPTY`` entries of this class and of every class it derives from."""
        return frozenset(name for c in cls.__mro__ for name in vars(c).get("OMITTED_WHEN_EMPTY", ()))

    def to_json(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", by_alias=True)
        omitted = self.omitted_when_empty()
        return {k: v for k, v in out.items() if k not in omitted or v not in (None, {}, [])}


R = TypeVar("R", bound=Record)


def save_record(record: Record, path: str | os.PathLike[str]) -> Path:
    """Write ``record`` as JSON atomically (temp file + rename)."""
    return atomic_write_json(path, record.to_json())


def parse_record(cls: type[R], raw: Any, where: str) -> R:
    """Validate raw JSON as ``cls``, upgrading an older version; one line on any mismatch."""
    if not isinstance(raw, dict):
        raise QMAEError(f"{where} is not a qmae-qiskit {cls.WHAT} (expected a JSON object)")
    schema, version = raw.get("schema"), raw.get("schema_version")
    if schema not in (None, cls.SCHEMA):
        raise QMAEError(f"{where} is not a qmae-qiskit {cls.WHAT} (its schema is {schema!r}, not {cls.SCHEMA!r})")
    if schema != cls.SCHEMA or version != cls.VERSION:
        upgraded = cls.upgrade(raw, version if isinstance(version, int) else None)
        if upgraded is None:
            found = f"schema version {version!r}" if schema else "no schema field"
            raise QMAEError(
                f"{where} has {found}; this version of qmae-qiskit reads {cls.WHAT} version "
                f"{cls.VERSION} (and the versions it upgrades); rewrite it with this version"
            )
        raw = upgraded
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise QMAEError(f"{where} is not a valid {cls.WHAT}: {one_line(exc)}") from None


def load_record(cls: type[R], path: str | os.PathLike[str], fix: str = "it was left unchanged") -> R:
    """Read a record of type ``cls`` from ``path``; missing, corrupt or foreign files fail with one line."""
    path = Path(path)
    if not path.is_file():
        raise QMAEError(f"{cls.WHAT} {path} not found")
    return parse_record(cls, read_json(path, cls.WHAT, fix), f"{cls.WHAT} {path}")


def legacy_provenance(created_at: str | None, versions: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance of a record written before provenance existed: what it stated, the rest unknown."""
    return {
        "created_at": created_at or "unknown",
        "command": None,
        "git_commit": None,
        "versions": {k: (None if v is None else str(v)) for k, v in (versions or {}).items()},
        "python": (versions or {}).get("python") or "unknown",
    }


def upgrade_unversioned(cls: type[Record], raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
    """For an ``upgrade`` hook: a file written before its type had a schema (qmae-qiskit 0.1) reads as version 1
    with its fields unchanged and a provenance that says only what is unknown; anything else is refused."""
    if version is not None or "schema" in raw:
        return None
    return {**raw, "schema": cls.SCHEMA, "schema_version": 1, "provenance": legacy_provenance(None)}


class UnversionedBefore(Record):
    """Base of a record type that qmae-qiskit 0.1 wrote without a schema: such a file reads as version 1."""

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
        return upgrade_unversioned(cls, raw, version)


class Line(BaseModel):
    """Base of a typed JSON line (a step of ``metrics.jsonl``): validated like a record, written one object per
    line; it has no provenance of its own (its run's record holds that) and omits fields that are None."""

    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


L = TypeVar("L", bound=Line)


def dumps_lines(lines: Iterable[Line]) -> str:
    """JSON-lines text of ``lines``, one compact object per line (what is appended to the file)."""
    return "".join(json.dumps(line.to_json()) + "\n" for line in lines)


def parse_lines(cls: type[L], text: str, where: str) -> list[L]:
    """The complete lines of ``text`` as ``cls``; a torn line (not JSON, from a kill) is skipped, a line that is
    JSON but not a ``cls`` fails with one line naming the file and the line number."""
    out: list[L] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            continue
        try:
            out.append(cls.model_validate(raw))
        except ValidationError as exc:
            raise QMAEError(f"{where} line {number} is not a valid {cls.__name__}: {one_line(exc)}") from None
    return out


def dumps(record: Record) -> str:
    """The record's JSON text (what :func:`save_record` writes)."""
    return json.dumps(record.to_json(), indent=2) + "\n"
