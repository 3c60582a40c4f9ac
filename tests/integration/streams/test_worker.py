"""The worker's runtime in this process, against the real broker: a batch's states, dead letters,
lists and offsets go out in the order that makes a crash cost nothing twice; expiry forgets a
user in the table and in the model; a checkpoint brings a restarted runtime back."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import cast

import msgspec
from faust.types import TableT

from feedrec.model.clock import ManualClock
from feedrec.model.state import load_state
from feedrec.streams.checkpoint import load_snapshot
from feedrec.streams.drain import Offsets
from feedrec.streams.kafka import ensure_topics
from feedrec.streams.records import Record
from feedrec.streams.settings import Settings
from feedrec.streams.topics import DLQ_TOPIC, RECS_TOPIC
from feedrec.streams.worker import Runtime, create_app

from ..helpers import TopicReader, event, eventually, headers_of, key_of, now_ms, value_of


def start(bootstrap: str, app_id: str, data_dir: Path, **env: str) -> tuple[Runtime, TableT]:
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "FEEDREC_APP_ID": app_id,
            "FEEDREC_DATA_DIR": str(data_dir),
            "FEEDREC_METRICS_PORT": "0",
            "FEEDREC_TRAIN_BATCH": "8",
            "FEEDREC_INDEX_REFRESH_S": "0.01",
            **env,
        }
    )
    app, rt = create_app(settings)
    table = cast(TableT, app.tables["users"])
    ensure_topics(bootstrap, settings.partitions, [table.changelog_topic.get_topic_name()])
    rt.prepare()
    return rt, table


def records(p: str, n: int, users: int = 4) -> list[Record]:
    """``n`` clicks of ``users`` users, at offsets 0 to n - 1 of partition 0."""
    return [
        Record(
            "events.click",
            0,
            k,
            event(f"{p}-e{k}", f"{p}-u{k % users}", f"{p}-i{k % 9}"),
            f"{p}-u{k % users}".encode(),
        )
        for k in range(n)
    ]


def test_a_batch_shows_its_lists_and_offsets_only_once_its_writes_are_durable(
    bootstrap: str, app_id: str, data_dir: Path
) -> None:
    p = uuid.uuid4().hex[:8]
    rt, table = start(bootstrap, app_id, data_dir)
    released: list[Offsets] = []
    rt.on_durable = released.append
    batch = records(p, 30)
    batch[5] = Record("events.click", 0, 5, b'{"event_id": "x"', b"k")  # cut short
    rt.handle(batch, table)
    rt.settle()
    assert released == [{("events.click", 0): 30}]
    # The states are in the table, with the marks of the events applied.
    state = load_state(table.data[f"{p}-u1".encode()])
    assert sum(state.counts) == 7 and state.marks == {"events.click/0": 29}
    # The refused record is on the dead-letter topic, with its reason and coordinates.
    dlq = TopicReader(bootstrap, DLQ_TOPIC)
    letter = eventually(
        lambda: [m for m in dlq.poll() if m.key() == b"k" and value_of(m) == b'{"event_id": "x"'],
        what="the dead letter",
    )
    assert headers_of(letter[0])["feedrec.reason"] == b"bad_json"
    assert headers_of(letter[0])["feedrec.offset"] == b"5"
    # Every user's lists went out, the last one naming the user's last feedback event.
    recs = TopicReader(bootstrap, RECS_TOPIC)
    mine = eventually(
        lambda: [
            msgspec.json.decode(value_of(m))
            for m in recs.poll()
            if key_of(m).startswith(p.encode())
        ],
        what="the lists",
    )
    assert {r["user_id"] for r in mine} == {f"{p}-u{u}" for u in range(4)}
    assert all(r["emitted_ts"] >= r["event_ts"] for r in mine)
    rt.producer.flush(5)


def test_expired_users_leave_the_table_and_the_model(
    bootstrap: str, app_id: str, data_dir: Path
) -> None:
    p = uuid.uuid4().hex[:8]
    rt, table = start(bootstrap, app_id, data_dir, FEEDREC_USER_TTL_S="1")
    rt.handle(records(p, 24), table)
    rt.settle()
    rt.pipeline.learn.step()  # every user has an embedding row now
    users = rt.pipeline.vocab.users
    assert all(f"{p}-u{u}" in users for u in range(4))
    rt.clock = ManualClock(now_ms() + 2000)  # the events were stamped now; two seconds on
    assert rt.expire(table) == 4
    assert not [k for k in table.data if k.startswith(p.encode())]
    assert not any(f"{p}-u{u}" in users for u in range(4))
    rt.producer.flush(5)


def test_a_restarted_runtime_resumes_from_its_checkpoint(
    bootstrap: str, app_id: str, data_dir: Path
) -> None:
    p = uuid.uuid4().hex[:8]
    rt, table = start(bootstrap, app_id, data_dir)
    rt.handle(records(p, 60), table)
    rt.settle()
    rt.ready.set()  # as warm_up does: checkpoints are only taken once the runtime is set up
    asyncio.run(rt.checkpoint())
    snap = load_snapshot(rt.settings.checkpoint_dir)
    assert snap is not None and snap.version == rt.pipeline.version > 0
    states = {f"{p}-u{u}": table.data[f"{p}-u{u}".encode()] for u in range(4)}
    users = list(states)
    before = rt.pipeline.recommend(users, states, 5)
    rt.producer.flush(5)

    again, _ = start(bootstrap, app_id, data_dir)
    assert again.pipeline.version == rt.pipeline.version
    assert again.pipeline.learn.learned == rt.pipeline.learn.learned
    assert again.pipeline.recommend(users, states, 5) == before
