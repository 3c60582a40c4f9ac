"""What a dead letter looks like on the ``events.dlq`` topic.

The value is the refused record's bytes, unchanged; headers carry the reason, a detail and the
record's coordinates (``feedrec.topic``, ``feedrec.partition``, ``feedrec.offset``).
"""

from __future__ import annotations

from model.events import Rejection

Headers = list[tuple[str, bytes]]


def dead_letter(rej: Rejection) -> tuple[bytes | None, bytes, Headers]:
    """``(key, value, headers)`` of the dead letter for ``rej``."""
    rec = rej.record
    headers = [
        ("feedrec.reason", rej.reason.encode()),
        ("feedrec.detail", rej.detail[:1000].encode()),
        ("feedrec.topic", rec.topic.encode()),
        ("feedrec.partition", str(rec.partition).encode()),
        ("feedrec.offset", str(rec.offset).encode()),
    ]
    return rec.key, rec.value or b"", headers
