"""End to end on a real broker: events in, recommendations and dead letters out."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import msgspec
import pytest
from confluent_kafka import Message

from feedrec.streams.kafka import make_producer
from feedrec.streams.metrics import scrape
from feedrec.streams.tools.processes import worker_process
from feedrec.streams.topics import DLQ_TOPIC, ITEMS_TOPIC, RECS_TOPIC

from .helpers import FAST, TopicReader, event, eventually, headers_of, key_of, now_ms, value_of


@pytest.fixture(scope="module", params=["batch", "faust"])
def worker(
    bootstrap: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """One worker per consumer mode: the batch drain (default) and the plain Faust agent."""
    data = tmp_path_factory.mktemp("worker")
    app_id = f"feedrec-it-{uuid.uuid4().hex[:8]}"
    env = {**FAST, "FEEDREC_CONSUMER": request.param}
    with worker_process(bootstrap, data, app_id, env=env) as (_, url):
        yield url


def recs_for(reader: TopicReader, user: str) -> list[dict]:
    return [msgspec.json.decode(value_of(m)) for m in reader.poll() if m.key() == user.encode()]


def test_events_produce_recommendations_with_the_documented_schema(
    bootstrap: str, worker: str
) -> None:
    p = uuid.uuid4().hex[:6]
    producer = make_producer(bootstrap)
    items = [f"{p}-i{i}" for i in range(40)]
    for i, item in enumerate(items):
        record = {"item_id": item, "category": f"c{i % 4}", "price": 10.0 + i, "available": i != 3}
        producer.produce(ITEMS_TOPIC, key=item.encode(), value=msgspec.json.encode(record))
    for n in range(400):
        user = f"{p}-u{n % 25}"
        kind = ("browse", "click", "cart")[n % 3]
        producer.produce(
            f"events.{kind}", key=user.encode(), value=event(f"{p}-w{n}", user, items[(n * 7) % 40])
        )
    producer.flush(10)
    target = f"{p}-target"
    reader = TopicReader(bootstrap, RECS_TOPIC)
    eventually(lambda: len(recs_for(reader, f"{p}-u1")) > 0, what="warm-up recommendations")
    bought = items[1]
    ts = now_ms()
    producer.produce(
        "events.purchase", key=target.encode(), value=event(f"{p}-buy", target, bought, ts - 10)
    )
    producer.flush(10)

    def triggered_by(event_id: str) -> Callable[[], dict | None]:
        def probe() -> dict | None:
            got = [r for r in recs_for(reader, target) if r["trigger_event_id"] == event_id]
            return got[0] if got else None

        return probe

    eventually(triggered_by(f"{p}-buy"), what="the recommendation after the purchase")
    producer.produce(
        "events.click",
        key=target.encode(),
        value=event(f"{p}-click", target, items[2], ts, session_id="s1"),
    )
    producer.flush(10)
    rec = eventually(triggered_by(f"{p}-click"), what="the target user's recommendation")
    reader.close()
    assert set(rec) == {
        "user_id",
        "rec_id",
        "items",
        "model_version",
        "trigger_event_id",
        "event_ts",
        "emitted_ts",
    }
    assert rec["user_id"] == target
    assert isinstance(rec["rec_id"], str) and rec["rec_id"]
    assert rec["event_ts"] == ts
    assert rec["emitted_ts"] >= rec["event_ts"]
    assert isinstance(rec["model_version"], int) and rec["model_version"] > 0
    assert 1 <= len(rec["items"]) <= 10
    for entry in rec["items"]:
        assert set(entry) == {"item_id", "score"}
        assert isinstance(entry["item_id"], str) and isinstance(entry["score"], float)
    shown = [e["item_id"] for e in rec["items"]]
    assert len(set(shown)) == len(shown)
    assert bought not in shown, "a purchased item was recommended despite the rule"
    assert items[3] not in shown, "an unavailable item was recommended"
    cats = Counter(int(i.rsplit("-i", 1)[1]) % 4 for i in shown if i.startswith(p))
    # The category of the user's latest item (the click on items[2]) is exempt from the cap.
    del cats[2]
    assert max(cats.values(), default=0) <= 3, "the per-category cap was exceeded"
    m = scrape(worker)
    assert m.events >= 402 and m.recommendations > 0


BAD: dict[str, tuple[str, bytes]] = {
    # key suffix: (expected reason, value); keys make every record findable in the DLQ.
    "json": ("bad_json", b"{this is not json"),
    "empty": ("bad_json", b""),
    "utf8": ("not_utf8", b'{"event_id":"\xff\xfe","user_id":"u","item_id":"i","ts":1}'),
    "missing": ("missing_field", b'{"event_id":"x","user_id":"u","item_id":"i"}'),
    "type": ("wrong_type", b'{"event_id":"x","user_id":"u","item_id":"i","ts":"now"}'),
    "emptyid": ("bad_id", b'{"event_id":"x","user_id":"","item_id":"i","ts":%d}'),
    "longid": ("bad_id", b'{"event_id":"x","user_id":"u","item_id":"' + b"i" * 300 + b'","ts":%d}'),
    "kind": (
        "unknown_event_type",
        b'{"event_id":"x","user_id":"u","item_id":"i","ts":%d,"event_type":"wishlist"}',
    ),
    "huge": (
        "too_large",
        b'{"event_id":"x","user_id":"u","item_id":"i","ts":%d,"session_id":"'
        + b"s" * 70_000
        + b'"}',
    ),
    "future": ("ts_out_of_range", b'{"event_id":"x","user_id":"u","item_id":"i","ts":%d}'),
    "seconds": ("ts_out_of_range", b'{"event_id":"x","user_id":"u","item_id":"i","ts":1764000000}'),
}


def test_bad_input_goes_to_the_dead_letter_topic_while_good_events_flow(
    bootstrap: str, worker: str
) -> None:
    p = uuid.uuid4().hex[:6]
    producer = make_producer(bootstrap)
    before = scrape(worker)
    user = f"{p}-good"
    sent: dict[bytes, tuple[str, bytes]] = {}
    for n, (name, (reason, value)) in enumerate(BAD.items()):
        ts = now_ms() + (3_600_000 if name == "future" else 0)
        if b"%d" in value:
            value = value.replace(b"%d", str(ts).encode())
        key = f"{p}-bad-{name}".encode()
        sent[key] = (reason, value)
        producer.produce("events.click", key=key, value=value)
        producer.produce("events.click", key=user.encode(), value=event(f"{p}-g{n}", user, "x1"))
    producer.flush(10)

    dlq = TopicReader(bootstrap, DLQ_TOPIC)

    def ours() -> dict[bytes, Message] | None:
        got = {key_of(m): m for m in dlq.poll() if m.key() in sent}
        return got if len(got) == len(sent) else None

    got = eventually(ours, what="every bad record in the DLQ")
    dlq.close()
    for key, (reason, value) in sent.items():
        msg = got[key]
        headers = headers_of(msg)
        assert headers["feedrec.reason"].decode() == reason, key
        assert msg.value() == value, "the DLQ must keep the original bytes"
        assert headers["feedrec.topic"] == b"events.click"
        assert int(headers["feedrec.partition"]) >= 0 and int(headers["feedrec.offset"]) >= 0
        assert headers["feedrec.detail"]

    def counted() -> bool:
        m = scrape(worker)
        return m.invalid - before.invalid >= len(BAD) and m.events - before.events >= len(BAD)

    eventually(counted, what="good events and invalid events counted")
    recs = TopicReader(bootstrap, RECS_TOPIC)
    eventually(
        lambda: [m for m in recs.poll() if m.key() == user.encode()],
        what="recommendations for the good user",
    )
    recs.close()
