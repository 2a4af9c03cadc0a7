"""What each console page shows, read from the areas that keep it: no HTTP, no HTML here.

Each module takes settings, a connection and the viewer's tenant (``None``: the whole
organisation; a tenant id: only that tenant's rows) and returns plain facts the
templates under ``templates/web/`` word and lay out. Ranges read the summaries (and the
ledger only for days whose summaries are out of date, as ``tokentally usage`` does), and
every list is bounded (a page, a limit), so a page costs the same on a ledger of a
thousand events or of a billion.
"""
