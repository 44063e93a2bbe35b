"""The command group loads each command's module on use: `--help` stays fast and lists each command's own help."""

import subprocess
import sys

import click
import pytest

from qmae_qiskit.cli.app import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_listed_short_help_is_the_commands_own(name):
    command = main.commands[name]  # imports the module
    assert command.name == name
    for limit in (30, 45, 80, 200):
        listed = click.utils.make_default_short_help(COMMANDS[name][1], limit)
        assert listed == command.get_short_help_str(limit)


def test_help_imports_no_command_module_and_no_torch_or_qiskit():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from qmae_qiskit.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert all(n in r.output for n in " + repr(sorted(COMMANDS)) + ")\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'qiskit', 'numpy', 'matplotlib')\n"
        "    or m.startswith('qmae_qiskit.cli.') and m not in ('qmae_qiskit.cli.app', 'qmae_qiskit.cli.spellings'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_top_level_command_in_the_package_is_in_the_map():
    # a command module added without an entry in COMMANDS would be unreachable
    import importlib
    import pkgutil

    import qmae_qiskit.cli as cli

    found = {}
    for info in pkgutil.iter_modules(cli.__path__):
        module = importlib.import_module(f"qmae_qiskit.cli.{info.name}")
        for attr, value in vars(module).items():
            if isinstance(value, click.Command) and value is not main and value.callback.__module__ == module.__name__:
                found[value] = f"{module.__name__}:{attr}"
    subcommands = {sub for cmd in found if isinstance(cmd, click.Group) for sub in cmd.commands.values()}
    top = {target for cmd, target in found.items() if cmd not in subcommands}
    assert top == {target for target, _ in COMMANDS.values()}
    assert list(main.list_commands(click.Context(main))) == sorted(COMMANDS)
    with pytest.raises(KeyError):
        main.commands["no-such-command"]
