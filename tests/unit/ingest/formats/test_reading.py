"""A one-call shape is read by its Reading in the key set's plan (worker/ingest/formats/reading.py):
no intermediate canonical record, no second plan; the fields as the alias table reads them."""

from __future__ import annotations

from worker.ingest.formats import anthropic, litellm
from worker.ingest.formats.reading import CANONICAL, Fields, Reading, as_record
from worker.ingest.normalise import Normaliser
from tests.unit.ingest.formats import fixtures as fx


def test_litellm_rows_and_anthropic_messages_are_read_in_one_plan_without_a_canonical_record():
    norm = Normaliser()
    for i in range(3):
        assert norm.normalise(dict(fx.LITELLM_ROW, request_id=f"r{i}")).event_id == f"r{i}"
        assert norm.normalise(dict(fx.ANTHROPIC_MESSAGE, id=f"m{i}")).event_id == f"m{i}"
    assert len(norm._plans) == 2 and not norm._canonical_plans  # one plan per key set; none for expanded records


def test_the_first_non_empty_key_wins_and_empty_ones_read_as_absent():
    reading = Reading({"model": ("model_group", "model"), "account_id": ("end_user", "user")})
    fields = Fields(("model_group", "model", "user"), reading)
    assert fields.multi == (("model", ("model_group", "model")),) and fields.names == ("account_id",)
    assert fields.values({"model_group": "", "model": "gpt-4o", "user": "u1"}) == {"account_id": "u1", "model": "gpt-4o"}
    ev = Normaliser(fmt="litellm").normalise(dict(fx.LITELLM_ROW, model_group="", end_user=""))
    assert (ev.model, ev.model_used, ev.account_id) == ("claude-3-5-sonnet-20241022",) * 2 + ("internal-user-1",)


def test_the_canonical_reading_keeps_every_key_that_feeds_no_field():
    fields = Fields(("occurred_at", "prompt_tokens", "colour"), CANONICAL)
    assert fields.extras == ("colour",)
    assert as_record(CANONICAL, {"occurred_at": "2026-10-01T00:00:00Z", "prompt_tokens": 1, "colour": "red"}) == {
        "occurred_at": "2026-10-01T00:00:00Z", "prompt_tokens": 1, "metadata": {"colour": "red"}}


def test_a_litellm_key_set_decides_once_which_kept_columns_it_has():
    with_tags = litellm.plan(frozenset(fx.LITELLM_ROW))
    assert with_tags is litellm.plan(frozenset(fx.LITELLM_ROW))  # the same reading for the same key set
    (rec,), _ = litellm.expand(dict(fx.LITELLM_ROW, request_tags=["prod"]))
    assert rec["metadata"]["request_tags"] == ["prod"] and "request_tags" not in litellm.expand(fx.LITELLM_ROW)[0][0]["metadata"]
    assert anthropic.plan(frozenset(fx.ANTHROPIC_MESSAGE)) is anthropic.MESSAGE
