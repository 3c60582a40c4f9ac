"""A real Kafka-protocol broker for every test that asks for one (``bootstrap``): the
integration tests and the regressions that need it.

``KAFKA_BOOTSTRAP_SERVERS`` points the tests at a running cluster; ``FEEDREC_TEST_BROKER=
testcontainers`` starts Kafka in Docker through testcontainers (where a Docker engine runs);
otherwise the embedded Tansu broker is started for the session. The tests never skip for want
of a broker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedrec.streams.kafka import ensure_topics, wait_for_broker
from feedrec.streams.tools.broker import EmbeddedBroker, free_port


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        wait_for_broker(configured)
        yield configured
        return
    if os.environ.get("FEEDREC_TEST_BROKER") == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            servers = kafka.get_bootstrap_server()
            wait_for_broker(servers)
            ensure_topics(servers, 4)
            yield servers
        return
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(port=free_port(), log_path=log) as broker:
        wait_for_broker(broker.bootstrap)
        ensure_topics(broker.bootstrap, 4)
        yield broker.bootstrap


@pytest.fixture
def app_id() -> str:
    return f"feedrec-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
