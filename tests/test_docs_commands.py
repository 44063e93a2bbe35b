"""Every `qmae-qiskit` command shown in README.md and docs/ parses with today's options and spellings.

Each command is parsed by click with ``--help`` appended: an unknown option or a missing option value stops the parse
(exit 2) before help is printed, and an old spelling prints its deprecation notice, so both fail here without
running anything.
"""

from __future__ import annotations

import re
import shlex

import pytest
from click.testing import CliRunner
from conftest import REPO

from qmae_qiskit.cli import main

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def shown_commands() -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(), flags=re.S | re.M):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = line.split(" #", 1)[0].strip()
                if line.startswith("qmae-qiskit "):
                    out.append((str(page.relative_to(REPO)), line.replace("<run>", "quickstart")))
    return out


COMMANDS = shown_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 30 and {page for page, _ in COMMANDS} >= {"README.md", "docs/quickstart.md"}


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{p}:{c[12:40]}" for p, c in COMMANDS])
def test_a_shown_command_parses(page, command):
    res = CliRunner().invoke(main, [*shlex.split(command)[1:], "--help"])
    assert res.exit_code == 0, f"{page}: {command}\n{res.output}"
    assert "deprecated" not in res.stderr, f"{page}: {command} uses an old spelling\n{res.stderr}"
