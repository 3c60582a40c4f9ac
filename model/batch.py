"""One micro-batch from raw records to its effects, and the order in which effects may show.

A batch has three kinds of effect: the users' new states (with their per-source marks) and the
dead letters must be durable before anything else happens; the recommendation lists and the
consumed offsets follow, in batch order, once they are. That order is what makes a crash cost
nothing twice:

- a state written before the crash carries the marks of the events in it, so their replay is
  not applied again, and triggers no second list;
- a state not written means its list was not sent either, and its offsets not committed, so
  the replay applies the events (once) and sends the list then.

:class:`BatchRunner` computes the effects (no I/O); :class:`Outbox` holds the lists and offsets
of each batch until the adapter reports that batch's durable writes delivered.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from feedrec.model.events import Event, Record, Rejection, ValidationLimits, decode_batch
from feedrec.model.exceptions import FeedrecError
from feedrec.model.pipeline import BatchResult, Pipeline, Position, Recommendation, source_name

log = logging.getLogger(__name__)

#: ``(topic, partition)`` -> the next offset to read there.
Offsets = dict[tuple[str, int], int]


@dataclass(slots=True)
class Effects:
    """What one batch of records changes, in the order it must become visible."""

    #: user id -> encoded state, to write (durably) first.
    states: dict[str, bytes]
    #: Records refused, to write (durably) to the dead-letter topic first.
    rejected: list[Rejection]
    #: Sent once the writes above are durable (at most once each).
    recommendations: list[Recommendation]
    #: Committed once the writes above are durable.
    offsets: Offsets
    result: BatchResult


def _merge(results: Sequence[BatchResult]) -> BatchResult:
    if len(results) == 1:
        return results[0]
    out = BatchResult(states={}, recommendations=[], counts={})
    for r in results:
        for kind, n in r.counts.items():
            out.counts[kind] = out.counts.get(kind, 0) + n
        out.recommendations += r.recommendations
        out.duplicates += r.duplicates
        out.replayed += r.replayed
        out.feedback += r.feedback
        out.hits += r.hits
        out.rec_clicks += r.rec_clicks
        out.index_pushed += r.index_pushed
        out.loss = r.loss if r.loss is not None else out.loss
        out.ranker_loss = r.ranker_loss if r.ranker_loss is not None else out.ranker_loss
        for stage, seconds in r.timings.items():
            out.timings[stage] = out.timings.get(stage, 0.0) + seconds
    return out


class BatchRunner:
    """Decode, validate and run a batch through the pipeline; a failing record is isolated.

    When the pipeline raises on a batch (a bug, not bad input: validation has passed), the batch
    is retried in halves down to single records, so only the record it fails on goes to the
    dead-letter topic (``internal_error``) and the good ones beside it are processed.
    """

    def __init__(self, pipeline: Pipeline, limits: ValidationLimits | None = None) -> None:
        self.pipeline = pipeline
        self.limits = limits or ValidationLimits()
        #: The positions and records of the calls whose events may wait for a gradient step,
        #: to find the record of one the step fails on (the pool empties at every step).
        self._waiting: list[tuple[list[Position], list[Record]]] = []

    def run(self, records: Sequence[Record], lookup: Callable[[str], bytes | None],
            now_ms: int) -> Effects:
        """The effects of ``records``; ``lookup`` gives a user's current encoded state."""
        valid, rejected = decode_batch(records, now_ms, self.limits)
        refused = {id(r.record) for r in rejected}
        sources = [r for r in records if id(r) not in refused]
        if len(sources) != len(valid):  # decode_batch's contract: each record valid or refused
            raise AssertionError(f"{len(valid)} events decoded from {len(sources)} records")
        offsets: Offsets = {}
        for r in records:
            offsets[(r.topic, r.partition)] = r.offset + 1
        states: dict[str, bytes] = {}
        results: list[BatchResult] = []
        self._run(valid, sources, lookup, states, now_ms, results, rejected)
        self._unlearned(rejected)
        result = _merge(results) if results else BatchResult({}, [], {})
        return Effects(states, rejected, result.recommendations, offsets, result)

    def _unlearned(self, rejected: list[Rejection]) -> None:
        """Dead-letter the records whose gradient step failed (their state is applied; the
        model skipped them), and forget the records no longer waiting."""
        skipped = self.pipeline.take_unlearned()
        if skipped:
            record_at = {p: r for positions, records in self._waiting
                         for p, r in zip(positions, records, strict=True)}
            for ev, pos, detail in skipped:
                record = record_at.get(pos) if pos is not None else None
                if record is None:
                    log.error("event %s was skipped by the model, its record no longer at hand",
                              ev.event_id)
                    continue
                rejected.append(Rejection(record, "internal_error",
                                          f"the model's gradient step failed on it: {detail}"))
        if not self.pipeline.pending:
            self._waiting.clear()

    def _run(self, events: list[Event], records: list[Record],
             lookup: Callable[[str], bytes | None], states: dict[str, bytes], now_ms: int,
             results: list[BatchResult], rejected: list[Rejection]) -> None:
        if not events:
            return
        current = {}
        for ev in events:
            if ev.user_id not in current:
                user = ev.user_id
                current[user] = states[user] if user in states else lookup(user)
        positions: list[Position] = [(source_name(r.topic, r.partition), r.offset)
                                     for r in records]
        self._waiting.append((positions, records))
        try:
            result = self.pipeline.process(events, current, now_ms, positions=positions)
        except Exception as exc:
            if len(events) == 1:
                log.exception("pipeline failed on %s[%d]@%d; sent to the dead-letter topic",
                              records[0].topic, records[0].partition, records[0].offset)
                rejected.append(Rejection(records[0], "internal_error", repr(exc)))
                return
            log.warning("pipeline failed on a batch of %d events (%r); retrying in halves",
                        len(events), exc)
            half = len(events) // 2
            self._run(events[:half], records[:half], lookup, states, now_ms, results, rejected)
            self._run(events[half:], records[half:], lookup, states, now_ms, results, rejected)
            return
        states.update(result.states)
        results.append(result)


class DeliveryError(FeedrecError):
    """A durable write failed for good: nothing after it may be committed."""


@dataclass(eq=False)
class Ticket:
    """One batch waiting in the :class:`Outbox`: counts its durable writes still in flight."""

    effects: Effects
    outstanding: int = 0
    sealed: bool = False
    _outbox: Outbox | None = field(default=None, repr=False)

    def expect(self, n: int = 1) -> None:
        """``n`` more durable writes were sent for this batch."""
        assert self._outbox is not None
        with self._outbox._lock:
            self.outstanding += n

    def delivered(self) -> None:
        assert self._outbox is not None
        with self._outbox._lock:
            self.outstanding -= 1

    def failed(self, reason: str) -> None:
        assert self._outbox is not None
        with self._outbox._lock:
            if self._outbox.error is None:
                self._outbox.error = reason


class Outbox:
    """Batches in order, each released once its durable writes are all delivered.

    Delivery reports may arrive on any thread; :meth:`release` hands out the effects of every
    batch at the head of the queue whose writes are done, oldest first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Ticket] = deque()
        #: The first durable write that failed for good, if any.
        self.error: str | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def open(self, effects: Effects) -> Ticket:
        ticket = Ticket(effects, _outbox=self)
        with self._lock:
            self._queue.append(ticket)
        return ticket

    def seal(self, ticket: Ticket) -> None:
        """Every durable write of ``ticket`` has been sent (its count is final)."""
        with self._lock:
            ticket.sealed = True

    def release(self) -> list[Effects]:
        """The batches now free to show their lists and commit their offsets, oldest first."""
        out = []
        with self._lock:
            if self.error is not None:
                raise DeliveryError(self.error)
            queue = self._queue
            while queue and queue[0].sealed and queue[0].outstanding <= 0:
                out.append(queue.popleft().effects)
        return out
