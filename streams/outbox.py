"""Batches that wait for their durable writes before anything else of theirs shows.

A batch's states (the table's changelog) and dead letters are sent first; its recommendation
lists and consumed offsets wait here, in batch order, until the broker has acknowledged every
one of those writes (see :mod:`feedrec.model.batch` for why that order makes a crash cost
nothing twice). Delivery reports may arrive on any thread.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from feedrec.streams.exceptions import StreamsError

T = TypeVar("T")


class DeliveryError(StreamsError):
    """A durable write failed for good: nothing after it may be committed."""


@dataclass(eq=False)
class Ticket(Generic[T]):
    """One batch waiting in the :class:`Outbox`: counts its durable writes still in flight."""

    item: T
    outbox: Outbox[T] = field(repr=False)
    outstanding: int = 0
    sealed: bool = False

    def expect(self, n: int = 1) -> None:
        """``n`` more durable writes were sent for this batch."""
        with self.outbox._lock:
            self.outstanding += n

    def delivered(self) -> None:
        with self.outbox._lock:
            self.outstanding -= 1

    def failed(self, reason: str) -> None:
        with self.outbox._lock:
            if self.outbox.error is None:
                self.outbox.error = reason


class Outbox(Generic[T]):
    """Batches in order, each released once its durable writes are all delivered:
    :meth:`release` hands out what every batch at the head of the queue holds once its writes
    are done, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Ticket[T]] = deque()
        #: The first durable write that failed for good, if any.
        self.error: str | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def open(self, item: T) -> Ticket[T]:
        ticket = Ticket(item, self)
        with self._lock:
            self._queue.append(ticket)
        return ticket

    def seal(self, ticket: Ticket[T]) -> None:
        """Every durable write of ``ticket`` has been sent (its count is final)."""
        with self._lock:
            ticket.sealed = True

    def release(self) -> list[T]:
        """What the batches now free to show their lists and commit their offsets hold, oldest
        first; :class:`DeliveryError` once a durable write failed for good."""
        out = []
        with self._lock:
            if self.error is not None:
                raise DeliveryError(self.error)
            queue = self._queue
            while queue and queue[0].sealed and queue[0].outstanding <= 0:
                out.append(queue.popleft().item)
        return out
