"""[anomalies]: defaults, values read, and every bad value named by its key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from worker.settings import SettingsError, load
from worker.settings.anomalies import AnomalySettings


def settings_from(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return load(path, env=env or {})


def test_defaults_and_the_shipped_values_agree(tmp_path):
    shipped = load(Path(__file__).resolve().parents[3] / "settings.toml", env={}).anomalies
    assert settings_from(tmp_path, "").anomalies == AnomalySettings() == shipped


def test_values_are_read_from_the_file_and_the_environment(tmp_path):
    s = settings_from(tmp_path, '[anomalies]\nk = 4.5\nmin_usd = "2.50"\nhistory_weeks = 6\n',
                      env={"TOKENTALLY_ANOMALIES_MIN_REQUESTS": "50"}).anomalies
    assert (s.k, s.min_usd, s.history_weeks, s.min_requests) == (4.5, Decimal("2.50"), 6, 50)


@pytest.mark.parametrize(("body", "key"), [
    ("k = 0", "anomalies.k"), ("k = \"six\"", "anomalies.k"), ("min_usd = \"-1\"", "anomalies.min_usd"),
    ("min_usd = \"lots\"", "anomalies.min_usd"), ("history_weeks = 0", "anomalies.history_weeks"),
    ("history_weeks = 60", "anomalies.history_weeks"), ("mad_floor = -0.1", "anomalies.mad_floor"),
    ("min_requests = 0", "anomalies.min_requests"), ("escalate_hours = 0", "anomalies.escalate_hours"),
    ("top = 0", "anomalies.top"), ("window = 3", "anomalies.window"),
])
def test_a_bad_value_is_refused_naming_the_key(tmp_path, body, key):
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        settings_from(tmp_path, f"[anomalies]\n{body}\n")
