"""The lazy command registry (cli.commands) lists exactly what the command modules define,
and ``tokentally --help`` imports none of them."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import typer
from typer.main import get_command_name
from typer.testing import CliRunner

import cli
from cli.commands import COMMANDS, LazyGroup, build

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("matplotlib", "genai_prices", "slack_sdk", "requests", "jinja2", "psycopg", "sqlalchemy", "alembic",
         "apscheduler", "reports", "jobs")


def _words(text: str) -> str:
    return " ".join(text.split())


def _first_paragraph(text: str) -> str:
    return text.split("\n\n", 1)[0]


def _command_modules() -> list[str]:
    return [f"cli.{m.name}" for m in pkgutil.iter_modules(cli.__path__) if m.name not in ("__main__",)]


def test_every_listed_command_is_built_from_its_module_with_the_help_the_table_gives() -> None:
    group = typer.main.get_command(cli.app)
    assert isinstance(group, LazyGroup)
    for name, entry in COMMANDS.items():
        command = build(name, entry, group)
        assert command.name == name
        assert _words(_first_paragraph(command.help or "")) == _words(entry.help), name


def test_every_command_the_modules_define_is_in_the_table() -> None:
    defined: set[tuple[str, str, str]] = set()  # (module, typer attribute, command name)
    for module_name in _command_modules():
        module = importlib.import_module(module_name)
        for attr, value in vars(module).items():
            if not isinstance(value, typer.Typer) or value is cli.app:
                continue
            if attr == "commands":
                defined |= {(module_name, attr, info.name or get_command_name(info.callback.__name__))
                            for info in value.registered_commands}
            else:
                listed = [n for n, e in COMMANDS.items() if (e.module, e.typer) == (module_name, attr)]
                assert len(listed) == 1, f"{module_name}.{attr} is listed {len(listed)} times"
                defined.add((module_name, attr, listed[0]))
    assert defined == {(e.module, e.typer, n) for n, e in COMMANDS.items()}


def test_the_root_help_lists_every_command_in_the_tables_order() -> None:
    result = CliRunner().invoke(cli.app, ["--help"], env={"TOKENTALLY_CONFIG": None, "COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed if line.strip()] == list(COMMANDS)


def test_a_mistyped_command_is_still_suggested() -> None:
    result = CliRunner().invoke(cli.app, ["statu"], env={"TOKENTALLY_CONFIG": None})
    assert result.exit_code == 2
    assert "Did you mean 'status'?" in result.output


def test_tokentally_help_imports_no_command_module_and_no_heavy_library() -> None:
    probe = ("import json, sys\nsys.argv = ['tokentally', '--help']\nfrom cli import main\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
             "print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "100"})
    code, modules = json.loads(done.stderr.strip().splitlines()[-1])
    assert code in (0, None), done.stderr
    assert "Commands:" in done.stdout
    command_modules = {e.module for e in COMMANDS.values()}
    assert [m for m in modules if m in command_modules or m.split(".")[0] in HEAVY] == []
