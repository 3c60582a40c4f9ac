"""Co-visitation as a source: the successors of the user's most recent items.

Each event on an item follows the user's last ``window`` items: full weight forward, half
backward, in a bounded, decayed table (:class:`model.covisit.CoVisits`). A user's score for an
item sums, over their recent items, each item's share of its source's weight times
``history_decay ** position``. Two instances run side by side: one forgets within a day (what
follows what in today's sessions), one never forgets (what follows what in a catalogue browsed
over months); the ranker weighs the two.
"""

from __future__ import annotations

import numpy as np

from feedrec.model.covisit import CoVisits, CoVisitsState
from feedrec.model.items import ItemStats
from feedrec.model.sources.base import Proposal, Query


class CoVisitation:
    def __init__(
        self,
        feature: str,
        capacity: int,
        window: int,
        slots: int,
        half_life_s: float | None,
        keep: int,
        history_decay: float,
    ) -> None:
        self.feature = feature
        self.window, self.keep, self.history_decay = window, keep, history_decay
        self.table = CoVisits(capacity, slots, half_life_s)

    def observe(
        self, histories: np.ndarray, items: np.ndarray, weights: np.ndarray, ts_ms: np.ndarray
    ) -> None:
        src = np.asarray(histories, dtype=np.int64)[:, : self.window]
        dst = np.broadcast_to(np.asarray(items, dtype=np.int64)[:, None], src.shape)
        wt = np.broadcast_to(np.asarray(weights, dtype=np.float64)[:, None], src.shape)
        ts = np.broadcast_to(np.asarray(ts_ms, dtype=np.int64)[:, None], src.shape)
        self.table.observe(
            np.r_[src.ravel(), dst.ravel()],
            np.r_[dst.ravel(), src.ravel()],
            np.r_[wt.ravel(), 0.5 * wt.ravel()],
            np.r_[ts.ravel(), ts.ravel()],
        )

    def propose(self, q: Query) -> Proposal:
        window = q.history[:, : self.window]
        nb, share = self.table.successors(window)
        steps = (self.history_decay ** np.arange(window.shape[1]))[None, :, None]
        b = len(window)
        return Proposal(nb.reshape(b, -1), (share * steps).reshape(b, -1), best=self.keep)

    def refresh(self, stats: ItemStats, rows_used: int) -> None:
        pass

    def reset(self, rows: np.ndarray) -> None:
        self.table.reset(rows)

    def state(self, rows_used: int) -> CoVisitsState:
        return self.table.state(rows_used)

    def load(self, state: CoVisitsState) -> None:
        self.table.load(state)
