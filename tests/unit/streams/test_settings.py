import pytest

from feedrec.model.exceptions import ConfigError
from feedrec.streams.settings import SETTINGS, Settings, settings_table


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.bootstrap_servers == "localhost:9092"
    assert s.metrics_port == 9400
    assert s.event_weights["purchase"] > s.event_weights["cart"] > s.event_weights["click"]
    cfg = s.pipeline_config()
    assert cfg.ranking.top_n == 10


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"FEEDREC_BATCH_SIZE": "0"}, "FEEDREC_BATCH_SIZE='0' is invalid: must be a positive"),
        ({"FEEDREC_BATCH_SIZE": "many"}, "FEEDREC_BATCH_SIZE"),
        ({"FEEDREC_DEVICE": "tpu"}, "must be one of auto, cpu, cuda"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "localhost"}, "host:port"),
        ({"FEEDREC_EVENT_WEIGHTS": "click=1"}, "missing weights"),
        ({"FEEDREC_EVENT_WEIGHTS": "like=1"}, "TYPE=WEIGHT"),
        ({"FEEDREC_TOP_N": "500"}, "FEEDREC_CANDIDATES"),
        ({"FEEDREC_EXCLUDE_PURCHASED": "maybe"}, "true or false"),
    ],
)
def test_bad_values_fail_fast_with_the_variable_name(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def test_table_lists_every_variable() -> None:
    table = settings_table()
    for spec in SETTINGS.values():
        assert f"`{spec.env}`" in table


def test_readme_settings_table_is_current() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert settings_table() in readme, "regenerate the README table from `feedrec settings`"
