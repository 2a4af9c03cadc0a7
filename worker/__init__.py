"""tokentally core: settings, database, ledger models, pricing, scheduler, CLI."""
