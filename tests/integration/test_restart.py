"""Crash and resume: a killed worker's successor keeps user state and model."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from feedrec.streams.kafka import make_producer
from feedrec.streams.metrics import scrape
from feedrec.streams.tools.processes import worker_process
from feedrec.streams.topics import RECS_TOPIC

from .helpers import TopicReader, event, eventually
from .test_pipeline import FAST, recs_for


def test_worker_survives_a_kill_and_keeps_state_and_model(bootstrap: str, tmp_path: Path) -> None:
    p = uuid.uuid4().hex[:6]
    app_id = f"feedrec-restart-{p}"
    env = {**FAST, "FEEDREC_CHECKPOINT_INTERVAL_S": "1"}
    producer = make_producer(bootstrap)
    user = f"{p}-u"
    reader = TopicReader(bootstrap, RECS_TOPIC)
    with worker_process(bootstrap, tmp_path, app_id, env=env) as (proc, url):
        for n in range(60):
            producer.produce(
                "events.click",
                key=f"{p}-o{n % 7}".encode(),
                value=event(f"{p}-w{n}", f"{p}-o{n % 7}", f"{p}-i{n % 11}"),
            )
        producer.produce("events.click", key=user.encode(), value=event(f"{p}-once", user, "a"))
        producer.flush(10)
        first = eventually(lambda: recs_for(reader, user), what="a recommendation before the kill")
        emitted_before = max(r["model_version"] for r in first)
        ckpts = tmp_path / "checkpoints"
        eventually(lambda: list(ckpts.glob("ckpt-*.pt")), what="a checkpoint")
        # Past the changelog flush and offset commit intervals, then no goodbye.
        eventually(lambda: scrape(url).model_version >= emitted_before, what="version gauge")
        time.sleep(4)
        proc.kill()
        proc.wait()

    with worker_process(bootstrap, tmp_path, app_id, env=env) as (_, url):
        assert scrape(url).model_version >= 1, "the model was not restored from its checkpoint"
        producer.produce("events.click", key=user.encode(), value=event(f"{p}-once", user, "a"))
        producer.produce("events.click", key=user.encode(), value=event(f"{p}-twice", user, "b"))
        producer.flush(10)
        eventually(lambda: scrape(url).events >= 1, what="events after the restart")

        def after() -> list[dict]:
            return [r for r in recs_for(reader, user) if r["trigger_event_id"] == f"{p}-twice"]

        (rec,) = eventually(after, what="a recommendation after the restart")
        m = scrape(url)
        assert m.model_version > 0
        assert rec["model_version"] >= emitted_before, "model_version went backwards"
        assert m.duplicates >= 1, "the repeated event was not recognised: state was lost"
    reader.close()
