"""One micro-batch from input records to its effects, with a failing record isolated.

A batch has three kinds of effect: the users' new states (with their per-source marks) and the
refused records must be made durable before anything else happens; the recommendation lists
(and, in the worker, the consumed offsets) follow, in batch order, once they are. That order is
what makes a crash cost nothing twice:

- a state written before the crash carries the marks of the events in it, so their replay is
  not applied again, and triggers no second list;
- a state not written means its list was not sent either, and its offsets not committed, so
  the replay applies the events (once) and sends the list then.

:class:`BatchRunner` computes the effects (no I/O); the worker writes them in that order
(:mod:`feedrec.streams.outbox`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic

from feedrec.model.events import Event, P, Position, Refused
from feedrec.model.pipeline import BatchResult, Pipeline
from feedrec.model.steps.emit import Recommendation

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Effects(Generic[P]):
    """What one batch of records changes, in the order it must become visible."""

    #: user id -> encoded state, to write (durably) first.
    states: dict[str, bytes]
    #: Records refused, to write (durably) to the dead-letter topic first.
    refused: list[Refused[P]]
    #: Sent once the writes above are durable (at most once each).
    recommendations: list[Recommendation]
    result: BatchResult


def _merge(results: Sequence[BatchResult]) -> BatchResult:
    """One result of the parts of a batch run separately; the standings are the last part's."""
    if len(results) == 1:
        return results[0]
    last = results[-1]
    out = BatchResult(
        states={},
        recommendations=[],
        counts={},
        model_version=last.model_version,
        model_events=last.model_events,
        index_size=last.index_size,
        index_refresh_seconds=last.index_refresh_seconds,
    )
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
        out.ranker_weights = r.ranker_weights or out.ranker_weights
        for stage, seconds in r.timings.items():
            out.timings[stage] = out.timings.get(stage, 0.0) + seconds
    return out


class BatchRunner(Generic[P]):
    """Decode, validate and run a batch through the pipeline; a failing record is isolated.

    When the pipeline raises on a batch (a bug, not bad input: validation has passed), the batch
    is retried in halves down to single records, so only the record it fails on is refused
    (``internal_error``) and the good ones beside it are processed. An event whose gradient
    step fails is refused the same way once the step has run (its state stays applied).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        #: The positions and records of the calls whose events may wait for a gradient step,
        #: to find the record of one the step fails on (the pool empties at every step).
        self._waiting: list[tuple[list[Position], Sequence[P]]] = []

    def run(self, records: Sequence[P], lookup: Callable[[str], bytes | None]) -> Effects[P]:
        """The effects of ``records``; ``lookup`` gives a user's current encoded state."""
        valid, refused = self.pipeline.decode(records)
        bad = {id(r.record) for r in refused}
        sources = [r for r in records if id(r) not in bad]
        if len(sources) != len(valid):  # the decoder's contract: each record valid or refused
            raise AssertionError(f"{len(valid)} events decoded from {len(sources)} records")
        states: dict[str, bytes] = {}
        results: list[BatchResult] = []
        self._run(valid, sources, lookup, states, results, refused)
        self._unlearned(refused)
        result = _merge(results) if results else BatchResult({}, [], {})
        return Effects(states, refused, result.recommendations, result)

    def _unlearned(self, refused: list[Refused[P]]) -> None:
        """Refuse the records whose gradient step failed (their state is applied; the model
        skipped them), and forget the records no longer waiting."""
        skipped = self.pipeline.learn.take_unlearned()
        if skipped:
            record_at = {
                p: r
                for positions, records in self._waiting
                for p, r in zip(positions, records, strict=True)
            }
            for ev, pos, detail in skipped:
                record = record_at.get(pos) if pos is not None else None
                if record is None:
                    log.error(
                        "event %s was skipped by the model, its record no longer at hand",
                        ev.event_id,
                    )
                    continue
                refused.append(
                    Refused(
                        record,
                        "internal_error",
                        f"the model's gradient step failed on it: {detail}",
                    )
                )
        if not self.pipeline.learn.pending:
            self._waiting.clear()

    def _run(
        self,
        events: list[Event],
        records: Sequence[P],
        lookup: Callable[[str], bytes | None],
        states: dict[str, bytes],
        results: list[BatchResult],
        refused: list[Refused[P]],
    ) -> None:
        if not events:
            return
        current = {}
        for ev in events:
            if ev.user_id not in current:
                user = ev.user_id
                current[user] = states[user] if user in states else lookup(user)
        positions: list[Position] = [(r.source, r.position) for r in records]
        self._waiting.append((positions, records))
        try:
            result = self.pipeline.process(events, current, positions=positions)
        except Exception as exc:
            if len(events) == 1:
                log.exception(
                    "pipeline failed on %s@%d; refused", records[0].source, records[0].position
                )
                refused.append(Refused(records[0], "internal_error", repr(exc)))
                return
            log.warning(
                "pipeline failed on a batch of %d events (%r); retrying in halves", len(events), exc
            )
            half = len(events) // 2
            self._run(events[:half], records[:half], lookup, states, results, refused)
            self._run(events[half:], records[half:], lookup, states, results, refused)
            return
        states.update(result.states)
        results.append(result)
