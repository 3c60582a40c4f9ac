"""The user's own items: what they just looked at, what they left open in another session, and
what waits in their cart.

Shoppers come back to what they looked at minutes ago and buy what they carted; on a
catalogue where nobody returns to an item, the ranker learns to weigh these down (and the
ranking hides seen items outright, see :class:`feedrec.model.state.RepeatShare`).
"""

from __future__ import annotations

import numpy as np

from feedrec.model.sources.base import Proposal, Query, Stateless


class History(Stateless):
    """The user's recent items, the i-th most recent scored ``decay ** i``."""

    feature = "history"

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def propose(self, q: Query) -> Proposal:
        scores = np.broadcast_to(self.decay ** np.arange(q.history.shape[1]), q.history.shape)
        return Proposal(q.history, scores)


class OtherSessions(Stateless):
    """The latest item of each of the user's other open sessions (a shopper with two tabs open
    may go on in either), each scored 1."""

    feature = "other_session"

    def propose(self, q: Query) -> Proposal:
        return Proposal(q.others, np.ones(q.others.shape))


class Cart(Stateless):
    """Items in the user's cart (carted, not bought since), each scored 1."""

    feature = "carted"

    def propose(self, q: Query) -> Proposal:
        return Proposal(q.carted, np.ones(q.carted.shape))


class Purchased(Stateless):
    """Items the user bought: evidence only (whether shoppers come back to them is for the
    ranker to learn), never proposed."""

    feature = "purchased"

    def propose(self, q: Query) -> Proposal:
        return Proposal(q.purchased, np.ones(q.purchased.shape), best=0)
