"""Errors a user can fix; the CLI prints them as one line and exits non-zero."""

from __future__ import annotations


class QMAEError(ValueError):
    """Bad input or state the user can fix: the message says what is wrong and how to fix it."""


def one_line(exc: BaseException) -> str:
    """A single line for ``exc``: pydantic's multi-line reports reduced to their first message."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(x) for x in first.get("loc", ()) if not any(c in str(x) for c in "[("))
            msg = str(first.get("msg", exc)).removeprefix("Value error, ")
            if first.get("type") == "extra_forbidden":
                return f"unknown option {loc!r}; check its spelling"
            return f"{loc}: {msg}" if loc else msg
        except Exception:  # pragma: no cover - fall back to the plain text
            pass
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


class QMAEWarning(UserWarning):
    """Something the user should know that does not stop the command (the CLI prints it as one line)."""
