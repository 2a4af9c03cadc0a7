"""The command registry: every top-level command, where it lives, and its module imported on first use.

:data:`COMMANDS` lists each command the ``tokentally`` group offers, in the order ``--help``
lists them: the module that defines it, the ``typer.Typer`` there that holds it (a group's
own app, or the module's ``commands`` for single commands), and the first paragraph of its
help (its words: line breaks do not matter), which is all ``--help`` shows of it. :class:`LazyGroup` is the root group: it prints
``--help`` from this table alone, and imports a command's module only when that command
runs (or its own ``--help`` is asked), so ``tokentally --help`` imports no command module
and ``tokentally status`` only the one status needs (no matplotlib, genai-prices, Slack
SDK, requests or Jinja).

That import, made inside :meth:`LazyGroup.get_command`, is one of the named exceptions to
"imports at module level" (ARCHITECTURE.md), like the channel registry's: the CLI root
imports a command module on first use. Command modules define their commands on their own
``typer.Typer`` objects and never on the root. A test keeps this table equal to what the
modules define (names, help, one entry per command).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Iterator, MutableMapping

import typer
from typer import _click as click
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_command_name, get_group_from_info
from typer.models import TyperInfo


@dataclass(frozen=True)
class Entry:
    module: str  # cli.<module> that defines the command
    typer: str  # the typer.Typer in that module: the group's app, or "commands"
    help: str  # the first paragraph of the command's help, as --help lists it
    group: bool = False  # a group of subcommands (add_typer), not a single command


def _command(module: str, help: str) -> Entry:
    return Entry(f"cli.{module}", "commands", help)


def _group(module: str, typer_name: str, help: str) -> Entry:
    return Entry(f"cli.{module}", typer_name, help, group=True)


COMMANDS: dict[str, Entry] = {
    "reconcile": _command("integrity", "Fetch a provider's own usage report, compare it with the ledger per UTC "
                                       "day and model, store the result and raise alerts; exit 1 when a difference "
                                       "counts."),
    "status": _command("status", "Database, data freshness per source, open counts, last run of each job, "
                                 "database outages."),
    "ingest": _command("ingest", "Ingest files once and print what happened."),
    "usage": _command("usage", "Usage totals for a range of local dates, grouped."),
    "forecast": _command("forecast", "This month's spend forecast to its end, with a range (from the last "
                                     "anomalies.history_weeks weeks)."),
    "reprice": _command("usage", "Recompute costs of the events in a range after pricing settings changed."),
    "migrate": _command("ops", "Upgrade the database schema to the current revision (Alembic)."),
    "run": _command("ops", "Run the worker daemon in the foreground, with the console and API when [web] enabled."),
    "web": _command("ops", "Serve the console and API alone, without the daemon (one more process, or several)."),
    "report": _command("reports", "Build a report now, archive it as a new version and print where it is."),
    "accounts": _group("accounts", "accounts_app", "Accounts and their tiers."),
    "alerts": _group("alerts", "alerts_app", "Alerts: one per condition and period."),
    "budgets": _group("budgets", "budgets_app", "Budgets on scopes: tenants, members, services, models, projects "
                                                "and keys."),
    "bench": _group("bench", "bench_app", "Benchmarks that print figures."),
    "integrity": _group("integrity", "integrity_app", "Unlogged calls and gaps in the books."),
    "reconciliations": _group("integrity", "reconciliations_app",
                              "Stored comparisons with the providers' usage reports."),
    "attempts": _group("integrity", "attempts_app", "Call attempts logged by apps before calling an LLM."),
    "jobs": _group("jobs", "jobs_app", "The jobs the daemon runs; run any by hand."),
    "limits": _group("limits", "limits_app", "Rate-limit and budget windows and what the gate decides."),
    "killswitch": _group("limits", "killswitch_app", "The system-wide kill switch: on, the gate refuses every call."),
    "notify": _group("notify", "notify_app", "Try a delivery channel."),
    "notifications": _group("notify", "notifications_app", "The outbox: messages sent, pending and failed."),
    "rejects": _group("rejects", "rejects_app", "Quarantined records."),
    "reports": _group("reports", "reports_app", "The report archive: list, show, verify, serve."),
    "summaries": _group("summaries", "summaries_app", "Daily and monthly summaries."),
    "tokens": _group("tokens", "tokens_app", "Tokens for the console and the HTTP API (stored hashed)."),
}


def defining_typer(entry: Entry) -> typer.Typer:
    """The ``typer.Typer`` that holds the entry's command (importing its module)."""
    return getattr(importlib.import_module(entry.module), entry.typer)


def build(name: str, entry: Entry, group: TyperGroup) -> click.Command:
    """The click command for ``name``, built the way typer builds a subcommand of ``group``."""
    holder = defining_typer(entry)
    options: dict[str, Any] = {"pretty_exceptions_short": True, "rich_markup_mode": group.rich_markup_mode}
    if entry.group:
        return get_group_from_info(TyperInfo(holder, name=name), suggest_commands=group.suggest_commands, **options)
    for info in holder.registered_commands:
        if (info.name or get_command_name(info.callback.__name__)) == name:
            return get_command_from_info(info, **options)
    raise LookupError(f"{entry.module}.{entry.typer} defines no command {name!r}")


class _Commands(MutableMapping[str, click.Command]):
    """``group.commands``: every name in :data:`COMMANDS`; a command is built when first looked up."""

    def __init__(self, group: TyperGroup) -> None:
        self._group = group
        self._built: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = build(name, COMMANDS[name], self._group)
        return self._built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("the command table is fixed")

    def __iter__(self) -> Iterator[str]:
        return iter([*COMMANDS, *(n for n in self._built if n not in COMMANDS)])

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._built))


class LazyGroup(TyperGroup):
    """The root group: names and short help from :data:`COMMANDS`, each command built on first use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click lists them (name, short help cut to the width), from the table: nothing imported."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        with formatter.section("Commands"):  # click's Command.get_short_help_str, on the table's text
            formatter.write_dl([(name, make_default_short_help(entry.help, limit).strip())
                                for name, entry in COMMANDS.items()])
