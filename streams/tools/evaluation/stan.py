"""STAN: Sequence and Time Aware Neighbourhood (Garg et al., SIGIR 2019), on a stream of users.

SKNN (:mod:`feedrec.streams.tools.evaluation.sknn`: the same sessions cut by ``gap_s``, inverted index, query of
the user's last ``session_len`` distinct items and "recent" sampling of ``sample`` candidates)
with the paper's three decays:

1. position in the current session: the item ``p`` steps back from the newest (``p = 0``) weighs
   ``w1 = exp(-p / lambda_1)`` (the paper's ``exp((pos - l) / lambda_1)``, ``pos`` 1-based from
   the oldest of ``l``); ``sim1(s, n) = sum of w1 over shared items / sqrt(l * |n|)``;
2. recency of the neighbour: ``sim2 = sim1 * exp(-(t_now - t_n) / lambda_2)``, ``t_n`` the
   time of the neighbour's last event and the difference in seconds (never below 0); the
   ``k_neighbours`` sessions of largest ``sim2`` are the neighbours;
3. position in the neighbour: item ``j`` of neighbour ``n`` adds
   ``sim2 * exp(-|p_n(j) - p_n*| / lambda_3)``, ``p_n(j)`` the position of ``j``'s last
   occurrence in ``n`` and ``p_n*`` that of the shared item nearest the end of ``n`` (as
   session-rec's ``STAN`` does; positions count every event of the session, from 1).

``None`` for a lambda switches its decay off; all three off is SKNN exactly.

Defaults: the lambdas are the constructor defaults of session-rec's STAN (``lambda_spw=1.02``,
``lambda_snh=5`` days, ``lambda_inh=2.05``), with 100 neighbours out of a recent sample of 500
(session-rec samples 5000; 500 keeps a recommendation at a few ms here). The newest item counts
most (the one before it ``exp(-1/1.02) = 0.38``), a neighbour five days old counts ``1/e``, and
items more than a few clicks from the shared one little. A stream of a few hours wants a
``lambda_2`` of hours, one of months a ``lambda_2`` of weeks: the ``GRID`` holds values from
2 hours to 90 days.
"""

from __future__ import annotations

import math
from typing import ClassVar

from feedrec.streams.tools.evaluation.sknn import SessionPool

HOUR, DAY = 3600.0, 86400.0


def _check(name: str, value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise ValueError(f"{name} must be > 0 or None, got {value}")
    return value


class STAN(SessionPool):
    GRID: ClassVar[tuple[dict, ...]] = (
        {},
        {"lambda_2": 2 * HOUR},
        {"lambda_2": DAY},
        {"lambda_2": 30 * DAY},
        {"lambda_2": 90 * DAY},
        {"lambda_1": 4.0},
        {"lambda_3": 5.0},
        {"k_neighbours": 200, "sample": 1000},
        {"session_len": 20},
        {"seen": "allow"},
        {"seen": "exclude"},
    )

    def __init__(
        self,
        k_neighbours: int = 100,
        sample: int = 500,
        session_len: int = 10,
        gap_s: float = 1800.0,
        lambda_1: float | None = 1.02,
        lambda_2: float | None = 5 * DAY,
        lambda_3: float | None = 2.05,
        seen: str = "first",
        index_cap: int | None = None,
    ) -> None:
        super().__init__(k_neighbours, sample, session_len, gap_s, seen, index_cap)
        self.lambda_1 = _check("lambda_1", lambda_1)
        self.lambda_2 = _check("lambda_2", lambda_2)
        self.lambda_3 = _check("lambda_3", lambda_3)
        #: ``exp(-d / lambda_3)`` by distance ``d``, grown as sessions do.
        self._w3: list[float] = []

    def neighbours(self, user_id: str, now_ms: int) -> list[tuple[float, int]]:
        """``(sim2, session id)`` of the user's neighbour sessions, best first."""
        query = self.query(user_id)
        if not query:
            return []
        l1 = self.lambda_1
        weights = [(i, math.exp(-p / l1) if l1 else 1.0) for p, i in enumerate(query)]
        norm = math.sqrt(len(query))
        per_ms = 1.0 / (1000.0 * self.lambda_2) if self.lambda_2 else 0.0
        sessions, stamp = self.sessions, self.stamp
        sims: list[tuple[float, int, int]] = []
        for sid in self.candidates(user_id, query):
            s = sessions[sid]
            pos = s.pos
            sim = sum(w for i, w in weights if i in pos) / (norm * math.sqrt(len(pos)))
            if per_ms:
                sim *= math.exp(-max(0, now_ms - s.end) * per_ms)
            sims.append((sim, stamp[sid], sid))
        return self.top_neighbours(sims)

    def scores(self, user_id: str, now_ms: int) -> dict[str, float]:
        out: dict[str, float] = {}
        query = self.query(user_id)
        l3 = self.lambda_3
        w3 = self._w3
        for sim, sid in self.neighbours(user_id, now_ms):
            s = self.sessions[sid]
            pos = s.pos
            if l3:
                if len(w3) < s.length:
                    w3.extend(math.exp(-d / l3) for d in range(len(w3), 2 * s.length))
                anchor = max(pos[i] for i in query if i in pos)
                for j, p in pos.items():
                    out[j] = out.get(j, 0.0) + sim * w3[abs(p - anchor)]
            else:
                for j in pos:
                    out[j] = out.get(j, 0.0) + sim
        return out
