"""Decode: input records to events, or refusals with a reason (:mod:`feedrec.model.events`)."""

from __future__ import annotations

from collections.abc import Sequence

from feedrec.model.clock import Clock
from feedrec.model.events import Event, P, Refused, ValidationLimits, decode_events


class Decode:
    """Validates records against the schema and ``limits``; timestamps against the clock."""

    def __init__(self, limits: ValidationLimits, clock: Clock) -> None:
        self.limits = limits
        self.clock = clock

    def __call__(self, records: Sequence[P]) -> tuple[list[Event], list[Refused[P]]]:
        """The good events in input order, and a refusal for every other record."""
        return decode_events(records, self.clock.now_ms(), self.limits)
