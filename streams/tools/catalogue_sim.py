"""A seeded "catalogue" stream: long user histories over months, no repeats, drifting tastes and
popularity that rises and fades over weeks, the kind of data book, film or product-catalogue
datasets hold (unlike :mod:`feedrec.streams.tools.simulator`, whose short sessions come back to the items they
just saw).

The world:

- items belong to categories (Zipf-sized) and carry unit latent vectors near their category's
  centre, so a category carries signal; each has a Zipf base popularity and a release time: a
  share of the catalogue is already out when the stream starts, the rest arrives evenly across
  the span. An item's popularity at age ``a`` is ``base * (evergreen + (1 - evergreen) *
  (1 - exp(-a / rise_days)) * exp(-a / fade_days))``: it climbs for a few days after release,
  peaks within about a week and fades over weeks to an evergreen floor, so this month's best
  sellers are not last season's;
- each user starts from a mixture of a few favourite categories (as in the shop), and their taste
  vector does a slow random walk (``taste_drift`` per square root of a day), so what they pick in
  the last months differs from the first;
- users have log-normal activity, so the stream's ``n`` events fall mostly on a minority of heavy
  users with histories of hundreds of events; each user's events come in visits spread uniformly
  over the span (days or weeks apart), a visit being a short burst of a few events minutes apart.

Each event picks an item from ``softmax(taste_sharpness * taste . item + log popularity(t) +
previous_bonus * prev . item)`` over the items released and not yet touched by this user (nobody
interacts twice with an item, whatever the event type); the last term only within a visit, so
consecutive picks are related (sequence-aware methods have signal) while long-term taste still
matters. The event type is drawn independently from ``event_mix`` (browse 40%, click 35%, cart
15%, purchase 10%): in catalogue data one interaction per item is all there is, and its type says
how far the user went rather than which item they will touch next.

Speed: the softmax over the whole catalogue is replaced by a sampled softmax. Candidates are
drawn from a mixture of proposals (current popularity overall and within categories weighted by
the user's taste, both drawn once per visit as its "listing"; within the previous item's
category, drawn per pick), each logit is corrected by ``-log(q / p)`` (proposal density over
popularity) so that the draw follows the full softmax (at the default sizes the category mix of
the picks is as close to the exact softmax's as a sample from it), and the winner is the Gumbel
argmax among the unseen, released candidates. Popularity is tabulated per
``popularity_step_days`` as one cdf over items laid out by category, so a global and an
in-category draw are both one ``searchsorted``. Users are independent given the (exogenous)
popularity curves, so all users advance in lockstep, one array operation per step for all of
them, and the histories are merged by time at the end: about 10 s of one core for 200,000 events
with the defaults, ~40% of it in the cdf searches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from feedrec.model.events import EVENT_TYPES
from feedrec.streams.topics import EVENT_TOPIC

#: Where the stream's time starts (ms); events lie in ``[START_MS, START_MS + span_days)``.
START_MS = 1_700_000_000_000
_DAY_MS = 86_400_000
_EVENT_TYPES = EVENT_TYPES  # browse, click, cart, purchase: the order of ``event_mix``


@dataclass(frozen=True, slots=True)
class CatalogueConfig:
    """Everything that shapes the catalogue stream; the same config and seed give the same events.

    The defaults (3,000 users, 20,000 items in 100 categories, 200 days, 16 dimensions) give,
    for 100,000 events, nearly all users with a median of ~17 events and the heaviest with
    ~600, ~27,000 visits, about a third of a visit's consecutive picks in one category (a tenth
    between visits) and a top 100 items that changes almost entirely between the first and
    the last month.
    """

    n_users: int = 3000
    n_items: int = 20000
    n_categories: int = 100
    #: Dimension of the latent taste / item space.
    dim: int = 16
    seed: int = 0
    #: Simulated time the stream covers, whatever the number of events.
    span_days: float = 200.0
    #: Zipf exponent of items' base popularity.
    popularity_skew: float = 1.0
    #: Zipf exponent of category sizes.
    category_skew: float = 0.7
    #: Norm of an item's offset from its category centre relative to the (unit) centre, on
    #: average; 0.6 puts items of one category at a cosine of about 0.75 to each other.
    item_spread: float = 0.6
    #: Norm of the noise added to a user's mixture of favourite categories, relative to it.
    taste_noise: float = 0.35
    #: Each user starts liking between 1 and this many categories.
    max_favourites: int = 3
    #: Sigma of the log-normal user activity weights (the heavy users' long histories).
    user_activity_sigma: float = 1.2
    #: Inverse temperature of the item softmax over taste . item.
    taste_sharpness: float = 7.0
    #: Norm of a taste's random-walk step over one day (steps over ``d`` days have norm
    #: ``taste_drift * sqrt(d)``); 0.07 turns a taste by about 50 degrees over 200 days.
    taste_drift: float = 0.07
    #: Share of items already released when the stream starts, and how far back (days) their
    #: release times go; the others are released uniformly over the span.
    initial_share: float = 0.25
    initial_age_days: float = 120.0
    #: Popularity lifecycle after release: rise and fade time scales (days) and the evergreen
    #: floor an item fades to (relative to its base popularity).
    rise_days: float = 3.0
    fade_days: float = 21.0
    evergreen: float = 0.03
    #: Popularity is tabulated at this step (days); an item is available from the first step
    #: starting after its release.
    popularity_step_days: float = 1.0
    #: Mean events per visit (geometric) and mean gap between a visit's events (minutes).
    visit_mean_events: float = 4.0
    gap_minutes: float = 3.0
    #: Candidates drawn per pick from each proposal: by popularity, by popularity within the
    #: user's taste-weighted categories, and (within a visit) within the previous item's category.
    candidates_popular: int = 48
    candidates_taste: int = 96
    candidates_previous: int = 40
    #: Weight of ``prev . item`` in a pick's logit within a visit (relatedness of the next pick).
    previous_bonus: float = 4.0
    #: Shares of browse, click, cart and purchase events.
    event_mix: tuple[float, float, float, float] = (0.40, 0.35, 0.15, 0.10)
    #: A user never has more than this share of the catalogue in their history.
    max_history_share: float = 0.25
    #: Mean and sigma of log(category price level), and sigma of item price around it.
    price_log_mean: float = 3.0
    price_log_sigma: float = 0.8
    item_price_sigma: float = 0.3

    def __post_init__(self) -> None:
        """Refuse configs that would make the stream meaningless rather than fail obscurely."""
        if (
            min(
                self.n_users,
                self.n_items,
                self.n_categories,
                self.dim,
                self.max_favourites,
                self.candidates_popular,
                self.candidates_taste,
                self.candidates_previous,
            )
            < 1
        ):
            raise ValueError(f"sizes must be positive: {self}")
        if self.n_categories > self.n_items:
            raise ValueError("n_categories must not exceed n_items")
        if not (
            self.span_days > 0
            and self.popularity_step_days > 0
            and self.rise_days > 0
            and self.fade_days > 0
            and self.visit_mean_events >= 1
            and self.gap_minutes > 0
        ):
            raise ValueError(f"time scales must be positive: {self}")
        for name in ("initial_share", "evergreen", "max_history_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        mix = self.event_mix
        if len(mix) != len(_EVENT_TYPES) or min(mix) < 0 or not sum(mix) > 0:
            raise ValueError(f"event_mix needs {len(_EVENT_TYPES)} non-negative shares: {mix}")


def _search(cdf: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``searchsorted(cdf, keys, side="right")``, keys in any shape; sorting the keys first is
    several times faster on a table larger than the caches (each search starts where the last
    one ended), which more than pays for the sort."""
    flat = keys.ravel()
    order = np.argsort(flat)
    found = np.empty(flat.shape, dtype=np.int64)
    found[order] = np.searchsorted(cdf, flat[order], side="right")
    return found.reshape(keys.shape)


class _World:
    """Items, their popularity tables and users' starting tastes, drawn from the seed."""

    def __init__(self, c: CatalogueConfig) -> None:
        rng = np.random.default_rng((c.seed, 0))
        self.c = c
        centres = rng.normal(size=(c.n_categories, c.dim))
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        # Items are laid out by category (internal index), so that a category is one slice of
        # the popularity cdf; external ids are a random permutation, so they say nothing.
        cat_w = 1.0 / np.arange(1, c.n_categories + 1) ** c.category_skew
        extra = rng.multinomial(c.n_items - c.n_categories, cat_w / cat_w.sum())
        sizes = 1 + extra[rng.permutation(c.n_categories)]
        self.cat = np.repeat(np.arange(c.n_categories), sizes)
        self.cat_lo = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.cat_hi = self.cat_lo + sizes
        noise = rng.normal(size=(c.n_items, c.dim)) * (c.item_spread / math.sqrt(c.dim))
        vecs = self.centres[self.cat] + noise
        self.vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
        self.ext = rng.permutation(c.n_items)
        base = 1.0 / (rng.permutation(c.n_items) + 1.0) ** c.popularity_skew
        n_old = int(round(c.initial_share * c.n_items))
        release = rng.uniform(0.0, c.span_days, size=c.n_items)
        release[:n_old] = -rng.uniform(0.0, c.initial_age_days, size=n_old)
        self.release = release[rng.permutation(c.n_items)]
        cat_level = rng.normal(c.price_log_mean, c.price_log_sigma, size=c.n_categories)
        price = np.exp(cat_level[self.cat] + rng.normal(0.0, c.item_price_sigma, c.n_items))
        self.price = np.maximum(np.round(price, 2), 0.01)
        # Popularity per time step, as one cdf over items (each step's row sums to 1), built in
        # place: (1 - exp(-a / rise)) * exp(-a / fade) = exp(-a / fade) - exp(-a / rise - a / fade).
        self.n_steps = max(1, math.ceil(c.span_days / c.popularity_step_days))
        starts = np.arange(self.n_steps)[:, None] * c.popularity_step_days
        age = starts - self.release[None, :]
        released = age >= 0.0
        np.maximum(age, 0.0, out=age)
        p = np.exp(age * (-1.0 / c.fade_days))
        p -= np.exp(age * (-1.0 / c.rise_days - 1.0 / c.fade_days), out=age)
        p *= 1.0 - c.evergreen
        p += c.evergreen
        p *= base
        p *= released
        total = p.sum(axis=1, keepdims=True)
        if not np.all(total > 0):
            raise ValueError(
                "no item is available at some time step: raise initial_share "
                "(some items must be out at the start) or evergreen"
            )
        p /= total
        # Popularity mass of each category per step, and the cdf just before its slice.
        self.cat_mass = np.add.reduceat(p, self.cat_lo, axis=1)
        self.cat_start = np.concatenate(
            [np.zeros((self.n_steps, 1)), np.cumsum(self.cat_mass, axis=1)[:, :-1]], axis=1
        )
        cdf = np.cumsum(p, axis=1, out=p)
        cdf[:, -1] = 1.0
        # All steps' cdfs in one increasing array (step d's row shifted by d), so that users at
        # different steps draw in one ``searchsorted``: a draw at step d looks up ``d + u``.
        cdf += np.arange(self.n_steps)[:, None]
        self.flat_cdf = cdf.ravel()
        # Starting tastes: a Dirichlet(1, ..)-weighted mixture of 1..max_favourites favourite
        # categories (normalised exponentials are Dirichlet), plus noise.
        n_fav = rng.integers(1, min(c.max_favourites, c.n_categories) + 1, size=c.n_users)
        k_fav = int(n_fav.max())
        fav = np.argsort(rng.random((c.n_users, c.n_categories)), axis=1)[:, :k_fav]
        mix = rng.standard_exponential((c.n_users, k_fav)) * (np.arange(k_fav) < n_fav[:, None])
        mix /= mix.sum(axis=1, keepdims=True)
        taste = np.einsum("uf,ufd->ud", mix, self.centres[fav])
        taste /= np.linalg.norm(taste, axis=1, keepdims=True)
        taste += rng.normal(size=taste.shape) * (c.taste_noise / math.sqrt(c.dim))
        self.taste = taste / np.linalg.norm(taste, axis=1, keepdims=True)
        self.activity = rng.lognormal(0.0, c.user_activity_sigma, c.n_users)
        self.rng = rng

    def history_lengths(self, n: int) -> np.ndarray:
        """Events per user summing to ``n``, by activity, none above the history cap."""
        c = self.c
        cap = max(1, int(c.max_history_share * c.n_items))
        if n > cap * c.n_users:
            raise ValueError(f"{n} events need more than {cap} per user; raise n_users/n_items")
        w = self.activity / self.activity.sum()
        counts = self.rng.multinomial(n, w)
        while (over := int(np.maximum(counts - cap, 0).sum())) > 0:
            counts = np.minimum(counts, cap)
            room = np.where(counts < cap, w, 0.0)
            counts += self.rng.multinomial(over, room / room.sum())
        return counts

    def visits(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Histories of ``counts`` events as ``(users, longest)`` arrays: event times (days,
        increasing along a row) and which events open a visit (beyond a user's count: padding).

        Each event after a user's first opens a new visit with ``1 / visit_mean_events``, so
        visits hold a geometric number of events; visits start uniformly over the span, and
        inside one the gaps are minutes.
        """
        c, rng = self.c, self.rng
        b, length = len(counts), int(counts.max())
        col = np.arange(length)
        first = rng.random((b, length)) < 1.0 / c.visit_mean_events
        first[:, 0] = True
        first &= col < counts[:, None]
        starts = np.sort(
            np.where(first, rng.uniform(0.0, c.span_days, (b, length)), np.inf), axis=1
        )
        visit = np.cumsum(first, axis=1) - 1
        gaps = np.where(first, 0.0, rng.exponential(c.gap_minutes / 1440.0, (b, length)))
        within = np.cumsum(gaps, axis=1)
        opened = np.maximum.accumulate(np.where(first, col, 0), axis=1)  # the visit's first event
        within -= np.take_along_axis(within, opened, axis=1)
        times = np.take_along_axis(starts, visit, axis=1) + within
        return np.minimum(times, c.span_days * (1.0 - 1e-12)), first

    def histories(
        self, users: np.ndarray, counts: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """The items (internal indexes) of each user's history in time order, with the
        ``(users, longest history)`` arrays of event times (days) and visit openings.

        All users advance in lockstep: round ``j`` makes every user's ``j``-th pick in one set of
        array operations (users are independent given the popularity curves), so the cost is
        per candidate rather than per numpy call. ``users`` must be sorted by decreasing
        ``counts``, so that the users still active in a round are a prefix.
        """
        c, rng = self.c, self.rng
        b_all, length = len(users), int(counts[0])
        n, dim = c.n_items, c.dim
        times, first = self.visits(counts)
        kp, kt, kq = c.candidates_popular, c.candidates_taste, c.candidates_previous
        k_pool = kp + kt
        frac_p, frac_t, frac_q = (k / (k_pool + kq) for k in (kp, kt, kq))
        frac_p1, frac_t1 = kp / k_pool, kt / k_pool  # a visit's first pick has no previous item
        sharp, bonus = c.taste_sharpness, c.previous_bonus
        eps = 1.0 - 1e-12  # keeps a draw inside its row / category despite rounding
        taste = self.taste[users].copy()
        t_last = np.zeros(b_all)
        step = np.zeros(b_all, dtype=np.int64)  # popularity step of the user's current visit
        ratio = np.zeros((b_all, c.n_categories))  # taste proposal density over popularity
        pool = np.zeros((b_all, k_pool), dtype=np.int64)  # the visit's listing
        pool_vecs = np.zeros((b_all, k_pool, dim), dtype=np.float32)
        pool_cats = np.zeros((b_all, k_pool), dtype=np.int64)
        pool_taste = np.zeros((b_all, k_pool))
        pool_base = np.zeros((b_all, k_pool))
        prev = np.zeros(b_all, dtype=np.int64)
        seen = np.zeros((b_all, n), dtype=bool)
        out = np.zeros((b_all, length), dtype=np.int64)
        active = b_all
        for j in range(length):
            while counts[active - 1] <= j:
                active -= 1
            is_first = first[:active, j]
            # Visits opening now: move the taste, then draw the visit's pool.
            f = np.flatnonzero(is_first)
            if len(f):
                t = times[f, j]
                walk = c.taste_drift * np.sqrt(t - t_last[f]) / math.sqrt(dim)
                tf = taste[f] + rng.normal(size=(len(f), dim)) * walk[:, None]
                tf /= np.linalg.norm(tf, axis=1, keepdims=True)
                taste[f], t_last[f] = tf, t
                d = np.minimum((t / c.popularity_step_days).astype(np.int64), self.n_steps - 1)
                step[f] = d
                mass = self.cat_mass[d]
                e = np.exp(sharp * (tf @ self.centres.T - 1.0))
                w = mass * e
                z = w.sum(axis=1, keepdims=True)
                ratio[f] = e / z
                rows = np.arange(len(f))[:, None]
                cat_cdf = (np.cumsum(w, axis=1) / z + rows).ravel()
                cat_cdf[c.n_categories - 1 :: c.n_categories] = rows[:, 0] + 1.0
                tc = np.searchsorted(cat_cdf, rows + rng.random((len(f), kt)) * eps, side="right")
                tc = np.clip(tc - rows * c.n_categories, 0, c.n_categories - 1)
                off = d[:, None].astype(float)
                glob = off + rng.random((len(f), kp)) * eps
                in_cat = (
                    off
                    + self.cat_start[d[:, None], tc]
                    + rng.random((len(f), kt)) * self.cat_mass[d[:, None], tc] * eps
                )
                keys = np.concatenate([glob, in_cat], axis=1)
                cand = _search(self.flat_cdf, keys) - d[:, None] * n
                cand[:, kp:] = np.clip(cand[:, kp:], self.cat_lo[tc], self.cat_hi[tc] - 1)
                cand = np.clip(cand, 0, n - 1)
                pool[f] = cand
                pv = self.vecs[cand]
                pool_vecs[f] = pv
                pc = self.cat[cand]
                pool_cats[f] = pc
                pt = (pv @ (sharp * tf)[:, :, None])[:, :, 0]
                pt[self.release[cand] > off * c.popularity_step_days] = -np.inf
                pool_taste[f] = pt
                rp = np.take_along_axis(ratio[f], pc, axis=1)
                pool_base[f] = frac_p + frac_t * rp
                # Sampled softmax: logit - log(q / p), q the proposal mixture, p popularity;
                # - log(Exp(1)) is Gumbel noise, so the argmax is a draw from the softmax.
                logit = pt - np.log((frac_p1 + frac_t1 * rp) * rng.standard_exponential(pt.shape))
                logit[seen[f[:, None], cand]] = -np.inf
                self._choose(f, cand, logit, j, seen, step, out, prev)
            # Later picks of a visit: the pool plus candidates from the previous item's category,
            # each with a bonus near the previous item.
            g = np.flatnonzero(~is_first)
            if len(g):
                d = step[g]
                pcat = self.cat[prev[g]]
                mass_pc = self.cat_mass[d, pcat]
                off = d.astype(float)
                q_t = (off + self.cat_start[d, pcat])[:, None] + rng.random((len(g), kq)) * (
                    mass_pc * eps
                )[:, None]
                qc = _search(self.flat_cdf, q_t) - d[:, None] * n
                qc = np.clip(qc, self.cat_lo[pcat][:, None], self.cat_hi[pcat][:, None] - 1)
                near = self.vecs[prev[g]] * bonus
                q_logit = (self.vecs[qc] @ (sharp * taste[g] + near)[:, :, None])[:, :, 0]
                q_logit -= np.log(frac_p + frac_t * ratio[g, pcat] + frac_q / mass_pc)[:, None]
                q_logit[self.release[qc] > (off * c.popularity_step_days)[:, None]] = -np.inf
                p_logit = pool_taste[g] + (pool_vecs[g] @ near[:, :, None])[:, :, 0]
                same = pool_cats[g] == pcat[:, None]
                p_logit -= np.log(pool_base[g] + same * (frac_q / mass_pc)[:, None])
                cand = np.concatenate([pool[g], qc], axis=1)
                logit = np.concatenate([p_logit, q_logit], axis=1)
                logit -= np.log(rng.standard_exponential(logit.shape))
                logit[seen[g[:, None], cand]] = -np.inf
                self._choose(g, cand, logit, j, seen, step, out, prev)
        return [out[r, :k] for r, k in enumerate(counts.tolist())], times, first

    def _choose(
        self,
        rows: np.ndarray,
        cand: np.ndarray,
        logit: np.ndarray,
        j: int,
        seen: np.ndarray,
        step: np.ndarray,
        out: np.ndarray,
        prev: np.ndarray,
    ) -> None:
        """Record each row's Gumbel-argmax candidate as its ``j``-th pick.

        A row whose candidates are all seen or unreleased (a user deep into the catalogue) takes
        a random released item it has not seen; should there be none (only in tiny catalogues),
        the unseen item released soonest.
        """
        best = np.argmax(logit, axis=1)
        item = cand[np.arange(len(rows)), best]
        for k in np.flatnonzero(np.isneginf(logit[np.arange(len(rows)), best])).tolist():
            r = rows[k]
            unseen = np.flatnonzero(~seen[r])
            avail = unseen[self.release[unseen] <= step[r] * self.c.popularity_step_days]
            if len(avail):
                item[k] = avail[self.rng.integers(len(avail))]
            else:
                item[k] = unseen[np.argmin(self.release[unseen])]
        seen[rows, item] = True
        out[rows, j] = item
        prev[rows] = item


#: Users generated together; bounds the per-batch seen mask (users x items booleans).
_BATCH_CELLS = 20_000_000


def catalogue_events(n: int, cfg: CatalogueConfig = CatalogueConfig()) -> list[tuple[str, dict]]:
    """n events in time order as (topic, fields) pairs, exactly like Shop.next_events returns:
    topic is :data:`feedrec.streams.topics.EVENT_TOPIC` of its type (e.g. "events.click"), fields a dict with
    keys event_id, user_id, item_id, ts (ms, int), session_id, category (str), price (float).

    Timestamps start at :data:`START_MS` and spread over ``cfg.span_days`` whatever ``n`` is (``n``
    only sets the density). Users are ``u<k>``, items ``i<k>``, categories ``c<k>``, a session is
    one visit (``v<seed>-<user>-<visit>``) and event ids ``cat<seed>-<k>`` in time order.
    Deterministic for a config; no (user, item) pair occurs twice.
    """
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    if n == 0:
        return []
    c = cfg
    w = _World(c)
    counts = w.history_lengths(n)
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]
    batch = max(1, _BATCH_CELLS // c.n_items)
    users, items, times, visits, places = [], [], [], [], []
    for lo in range(0, len(order), batch):
        us = order[lo : lo + batch]
        hist, t, first = w.histories(us, counts[us])
        for r, (u, h) in enumerate(zip(us.tolist(), hist, strict=True)):
            users.append(np.full(len(h), u))
            items.append(h)
            times.append(t[r, : len(h)])
            visits.append(np.cumsum(first[r, : len(h)]) - 1)
            places.append(np.arange(len(h)))
    users_a, items_a = np.concatenate(users), np.concatenate(items)
    ts = START_MS + (np.concatenate(times) * _DAY_MS).astype(np.int64)
    visits_a = np.concatenate(visits)
    # By time; a user's events sharing a millisecond keep their order.
    ordering = np.lexsort((np.concatenate(places), users_a, ts))
    mix = np.asarray(c.event_mix, dtype=float)
    kinds = w.rng.choice(len(_EVENT_TYPES), size=n, p=mix / mix.sum()).tolist()
    item_ids = [f"i{k}" for k in w.ext.tolist()]
    cat_names = [f"c{k}" for k in w.cat.tolist()]
    prices = w.price.tolist()
    topics = [EVENT_TOPIC[t] for t in _EVENT_TYPES]
    seed = c.seed
    return [
        (
            topics[kinds[k]],
            {
                "event_id": f"cat{seed}-{k + 1}",
                "user_id": f"u{u}",
                "item_id": item_ids[i],
                "ts": t,
                "session_id": f"v{seed}-{u}-{v}",
                "category": cat_names[i],
                "price": prices[i],
            },
        )
        for k, (t, u, i, v) in enumerate(
            zip(
                ts[ordering].tolist(),
                users_a[ordering].tolist(),
                items_a[ordering].tolist(),
                visits_a[ordering].tolist(),
                strict=True,
            )
        )
    ]
