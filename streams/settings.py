"""The worker's settings: one frozen object, read from the environment in this one place.

Each setting is declared once, as a field of :class:`Settings`; the same declarations are the
README's settings table (``feedrec settings`` prints it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from feedrec.model.config import PipelineConfig
from feedrec.model.events import EVENT_TYPES, EVENT_WEIGHTS, ValidationLimits
from feedrec.model.exceptions import ConfigError
from feedrec.model.ranking import RankConfig
from feedrec.model.state import StateLimits
from feedrec.model.twotower import ModelConfig
from feedrec.streams.kafka import PRODUCER_LINGER_MS

DEFAULT_BOOTSTRAP = "localhost:9092"
_WEIGHTS_DEFAULT = ",".join(f"{t}={w:g}" for t, w in EVENT_WEIGHTS.items())


@dataclass(frozen=True, slots=True)
class Setting:
    """How one setting is read: its environment variable, its default as text, what it means
    and the function that reads (and checks) its text."""

    env: str
    default: str
    help: str
    parse: Callable[[str], Any] = str


def setting(env: str, default: str, help: str, parse: Callable[[str], Any] = str) -> Any:
    """A field of :class:`Settings` read from ``env`` (see :class:`Setting`)."""
    return field(metadata={"setting": Setting(env, default, help, parse)})


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _port(text: str) -> int:
    problem = "must be a TCP port, 1-65535 (0 turns the endpoint off)"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(problem) from None
    if not 0 <= value <= 65535:
        raise ValueError(problem)
    return value


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError("must be true or false")
    return value in ("true", "1", "yes")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return parse


def _weights(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in EVENT_TYPES:
            raise ValueError(f"expected TYPE=WEIGHT pairs with TYPE in {', '.join(EVENT_TYPES)}")
        out[name] = float(value)
    missing = set(EVENT_TYPES) - set(out)
    if missing:
        raise ValueError(f"missing weights for {', '.join(sorted(missing))}")
    return out


def _bootstrap(text: str) -> str:
    for server in text.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("expected host:port[,host:port...]")
    return text


@dataclass(frozen=True, slots=True)
class Settings:
    """The worker's settings. Each is declared once, here: its type, and through
    :func:`setting` its environment variable, its default (as the variable would hold it), what
    it means and how its text is read and checked. The order is the README table's."""

    bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS",
        DEFAULT_BOOTSTRAP,
        "Kafka bootstrap servers.",
        _bootstrap,
    )
    app_id: str = setting(
        "FEEDREC_APP_ID",
        "feedrec",
        "Consumer group and prefix of the worker's internal topics.",
    )
    partitions: int = setting(
        "FEEDREC_PARTITIONS",
        "4",
        "Partitions of every topic created on start.",
        _positive_int,
    )
    data_dir: Path = setting("FEEDREC_DATA_DIR", ".feedrec", "Checkpoints and worker files.", Path)
    metrics_port: int = setting(
        "FEEDREC_METRICS_PORT",
        "9400",
        "Port of the Prometheus /metrics endpoint (0 = off).",
        _port,
    )
    consumer: str = setting(
        "FEEDREC_CONSUMER",
        "batch",
        "How events are read: 'batch' (confluent-kafka batches over the partitions Faust assigns) "
        "or 'faust' (a Faust agent with take_events).",
        _choice("batch", "faust"),
    )
    batch_size: int = setting(
        "FEEDREC_BATCH_SIZE",
        "1000",
        "Most events per micro-batch.",
        _positive_int,
    )
    batch_within_s: float = setting(
        "FEEDREC_BATCH_WITHIN_S",
        "0.05",
        "Faust mode: longest wait to fill a micro-batch. Batch mode takes what has arrived and "
        "waits this long only when nothing has.",
        _positive_float,
    )
    torch_threads: int = setting(
        "FEEDREC_TORCH_THREADS",
        "1",
        "CPU threads for torch and faiss; one avoids oversubscribing the cores the consumer and "
        "broker share (raise it for large batches).",
        _positive_int,
    )
    device: str = setting("FEEDREC_DEVICE", "auto", "Model device.", _choice("auto", "cpu", "cuda"))
    index_kind: str = setting(
        "FEEDREC_INDEX",
        "auto",
        "Nearest-neighbour index.",
        _choice("auto", "faiss", "exact"),
    )
    dim: int = setting("FEEDREC_DIM", "32", "Embedding size.", _positive_int)
    user_capacity: int = setting(
        "FEEDREC_USER_CAPACITY",
        "200000",
        "Users with an embedding; least recently seen are evicted.",
        _positive_int,
    )
    item_capacity: int = setting(
        "FEEDREC_ITEM_CAPACITY",
        "200000",
        "Items with an embedding; least recently seen are evicted.",
        _positive_int,
    )
    learning_rate: float = setting(
        "FEEDREC_LEARNING_RATE",
        "0.02",
        "Optimizer step size.",
        _positive_float,
    )
    train_batch: int = setting(
        "FEEDREC_TRAIN_BATCH",
        "256",
        "Events per gradient step; small batches are pooled up to this.",
        _positive_int,
    )
    train_max_delay_s: float = setting(
        "FEEDREC_TRAIN_MAX_DELAY_S",
        "1.0",
        "Longest an event waits to be learned from when traffic is light.",
        _positive_float,
    )
    negatives: int = setting(
        "FEEDREC_NEGATIVES",
        "64",
        "Sampled negatives per batch.",
        _positive_int,
    )
    event_weights: dict[str, float] = setting(
        "FEEDREC_EVENT_WEIGHTS",
        _WEIGHTS_DEFAULT,
        "Learning weight per event type.",
        _weights,
    )
    top_n: int = setting("FEEDREC_TOP_N", "10", "Items per recommendation.", _positive_int)
    candidates: int = setting(
        "FEEDREC_CANDIDATES",
        "20",
        "Embedding-index candidates per user, merged with the user's recent items, co-visitation "
        "and trending candidates before ranking.",
        _positive_int,
    )
    max_per_category: int = setting(
        "FEEDREC_MAX_PER_CATEGORY",
        "3",
        "Diversity cap per category in one list (0 = none); the category of the user's latest "
        "item is exempt.",
        _non_negative_int,
    )
    exclude_purchased: bool = setting(
        "FEEDREC_EXCLUDE_PURCHASED",
        "false",
        "Never recommend an item the user already bought. Off: the ranker learns whether shoppers "
        "come back to what they bought.",
        _flag,
    )
    ranker_sample: int = setting(
        "FEEDREC_RANKER_SAMPLE",
        "32",
        "Events per gradient step replayed to train the ranker online (0 = keep its initial "
        "weights).",
        _non_negative_int,
    )
    producer_linger_ms: int = setting(
        "FEEDREC_PRODUCER_LINGER_MS",
        str(PRODUCER_LINGER_MS),
        "How long the worker's producer (recommendations, state changelog) waits to fill a batch: "
        "fewer, larger batches for the broker, at most this much added latency.",
        _non_negative_int,
    )
    browse_rec_interval_s: float = setting(
        "FEEDREC_BROWSE_REC_INTERVAL_S",
        "30",
        "A browse triggers a recommendation at most this often per user.",
        float,
    )
    history_len: int = setting(
        "FEEDREC_HISTORY_LEN",
        "20",
        "Recent items kept per user.",
        _positive_int,
    )
    user_ttl_s: float = setting(
        "FEEDREC_USER_TTL_S",
        "86400",
        "Users idle this long are dropped from the state table.",
        _positive_float,
    )
    checkpoint_interval_s: float = setting(
        "FEEDREC_CHECKPOINT_INTERVAL_S",
        "30",
        "Seconds between model checkpoints.",
        _positive_float,
    )
    index_refresh_s: float = setting(
        "FEEDREC_INDEX_REFRESH_S",
        "1.0",
        "Longest time before changed embeddings reach the index.",
        _positive_float,
    )
    index_min_changes: int = setting(
        "FEEDREC_INDEX_MIN_CHANGES",
        "256",
        "Changed items that trigger an earlier index refresh.",
        _positive_int,
    )
    max_payload_bytes: int = setting(
        "FEEDREC_MAX_PAYLOAD_BYTES",
        "65536",
        "Larger events go to the dead-letter topic.",
        _positive_int,
    )
    max_event_age_s: float = setting(
        "FEEDREC_MAX_EVENT_AGE_S",
        "2592000",
        "Older event timestamps are refused.",
        _positive_float,
    )
    max_event_future_s: float = setting(
        "FEEDREC_MAX_EVENT_FUTURE_S",
        "300",
        "Timestamps further ahead are refused.",
        _positive_float,
    )
    hit_rate_window: int = setting(
        "FEEDREC_HIT_RATE_WINDOW",
        "1000",
        "Feedback events in the online hit-rate window.",
        _positive_int,
    )
    session_timeout_s: float = setting(
        "FEEDREC_SESSION_TIMEOUT_S",
        "6",
        "Consumer group session timeout: a killed worker's partitions move to another (or its "
        "replacement) about this long after.",
        _positive_float,
    )
    connect_timeout_s: float = setting(
        "FEEDREC_CONNECT_TIMEOUT_S",
        "30",
        "How long the worker and the tools wait on start for a Kafka broker to answer before "
        "giving up.",
        _positive_float,
    )
    group_instance_id: str = setting(
        "FEEDREC_GROUP_INSTANCE_ID",
        "auto",
        "Static consumer-group membership: a restarted worker takes its partitions back at once "
        "instead of waiting out the dead one's session. Must be unique among live workers and "
        "stay the same across restarts of one. 'auto' derives it from the app id, host name and "
        "data directory; 'off' joins as a dynamic member.",
        str,
    )
    seed: int = setting("FEEDREC_SEED", "0", "Random seed of the model.", int)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting; a bad value fails here, naming the variable and what it needs."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, spec in SETTINGS.items():
            if name in overrides:
                values[name] = overrides[name]
                continue
            text = env.get(spec.env, spec.default)
            try:
                values[name] = spec.parse(text)
            except ValueError as exc:
                raise ConfigError(
                    f"{spec.env}={text!r} is invalid: {exc}. {spec.help} Default: {spec.default!r}."
                ) from None
        if values["candidates"] < values["top_n"]:
            raise ConfigError(
                f"FEEDREC_CANDIDATES ({values['candidates']}) must be >= FEEDREC_TOP_N "
                f"({values['top_n']})."
            )
        return cls(**values)

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(
            model=ModelConfig(
                dim=self.dim,
                user_capacity=self.user_capacity,
                item_capacity=self.item_capacity,
                history_len=self.history_len,
                negatives=self.negatives,
                lr=self.learning_rate,
                seed=self.seed,
            ),
            state=StateLimits(
                history_len=self.history_len,
                browse_rec_interval_ms=int(self.browse_rec_interval_s * 1000),
            ),
            ranking=RankConfig(
                top_n=self.top_n,
                candidates=self.candidates,
                max_per_category=self.max_per_category,
                exclude_purchased=self.exclude_purchased,
            ),
            weights=self.event_weights,
            validation=self.validation_limits(),
            train_batch=self.train_batch,
            train_max_delay_s=self.train_max_delay_s,
            ranker_sample=self.ranker_sample,
            index_refresh_interval_s=self.index_refresh_s,
            index_refresh_min_changes=self.index_min_changes,
        )

    def validation_limits(self) -> ValidationLimits:
        return ValidationLimits(
            max_payload_bytes=self.max_payload_bytes,
            max_age_ms=int(self.max_event_age_s * 1000),
            max_future_ms=int(self.max_event_future_s * 1000),
        )


#: Field name -> how it is read (the declarations above, by name).
SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in fields(Settings)}


def settings_table() -> str:
    """The settings as a Markdown table (kept in the README)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for spec in SETTINGS.values():
        lines.append(f"| `{spec.env}` | `{spec.default}` | {spec.help} |")
    return "\n".join(lines)
