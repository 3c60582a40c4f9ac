"""Everything a user ever had, in a few hundred bytes: a chain of small Bloom filters.

A user's recent items say what they are doing now; whether they come back to an item they had
months ago needs all of them, and a catalogue user can have thousands. So each user state carries
``seen``: filters of :data:`FILTER_BYTES` each, oldest first, each holding up to :data:`PER_FILTER`
items (16 bits an item, :data:`HASHES` probes: about 0.24% false positives per filter). When the
newest is full a fresh one is started; past :data:`MAX_FILTERS` the oldest is dropped, so the
state stays bounded and very old items are forgotten.

Items are hashed by id with an unkeyed 64-bit BLAKE2b (stable across processes, unlike
``hash``), so a worker and its restarted successor agree, and candidate rows carry the same key
(:attr:`feedrec.model.items.ItemStats.key`) for a vectorised membership test.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b

import numpy as np

FILTER_BYTES = 256
PER_FILTER = 128
HASHES = 4
MAX_FILTERS = 16
_BITS = FILTER_BYTES * 8
_SHIFT = 11  # log2(_BITS): each probe takes 11 bits of the key


def item_key(item_id: str) -> int:
    """The item's 64-bit key."""
    return int.from_bytes(blake2b(item_id.encode(), digest_size=8).digest(), "little")


def item_keys(item_ids: Sequence[str]) -> np.ndarray:
    return np.fromiter((item_key(i) for i in item_ids), np.uint64, len(item_ids))


#: item id -> its probes as one int (bit ``b`` of a filter read as a little-endian int is bit
#: ``b & 7`` of byte ``b >> 3``): hashing is most of the cost of an update.
_MASKS: dict[str, int] = {}
_CACHE_LIMIT = 1 << 20


def _mask(item_id: str) -> int:
    mask = _MASKS.get(item_id)
    if mask is None:
        if len(_MASKS) >= _CACHE_LIMIT:
            _MASKS.clear()
        key = item_key(item_id)
        mask = 0
        for j in range(HASHES):
            mask |= 1 << ((key >> (_SHIFT * j)) & (_BITS - 1))
        _MASKS[item_id] = mask
    return mask


def add_many(seen: bytes, count: int, item_ids: Sequence[str]) -> tuple[bytes, int]:
    """``seen`` (and the number of items in its newest filter) with ``item_ids`` added."""
    if not item_ids:
        return seen, count
    older = seen[:-FILTER_BYTES]
    started = bool(seen)  # whether there is a newest filter yet
    newest = int.from_bytes(seen[-FILTER_BYTES:], "little") if started else 0
    for item_id in item_ids:
        if not started or count >= PER_FILTER:
            if started:
                older += newest.to_bytes(FILTER_BYTES, "little")
                if len(older) > (MAX_FILTERS - 1) * FILTER_BYTES:
                    older = older[FILTER_BYTES:]
            newest, count, started = 0, 0, True
        mask = _mask(item_id)
        if newest & mask != mask:
            newest |= mask
            count += 1
    return older + newest.to_bytes(FILTER_BYTES, "little"), count


def has(seen: bytes, item_id: str) -> bool:
    """Whether ``item_id`` is (probably) in ``seen``."""
    mask = _mask(item_id)
    for base in range(0, len(seen), FILTER_BYTES):
        if int.from_bytes(seen[base : base + FILTER_BYTES], "little") & mask == mask:
            return True
    return False


def contains(seens: Sequence[bytes], keys: np.ndarray) -> np.ndarray:
    """``(B, C)`` bools: whether ``keys[b, c]`` (uint64) is (probably) in ``seens[b]``; one
    vectorised pass over every filter of the batch."""
    keys = np.asarray(keys, dtype=np.uint64)
    out = np.zeros(keys.shape, dtype=bool)
    counts = np.fromiter((len(s) // FILTER_BYTES for s in seens), np.int64, len(seens))
    if not counts.any():
        return out
    filters = np.frombuffer(b"".join(seens), dtype=np.uint8).reshape(-1, FILTER_BYTES)
    owner = np.repeat(np.arange(len(seens)), counts)  # the user of each filter, in order
    probed = keys[owner]  # (filters, C)
    f = np.arange(len(owner))[:, None]
    hit = np.ones(probed.shape, dtype=bool)
    for j in range(HASHES):
        bit = (probed >> np.uint64(_SHIFT * j)) & np.uint64(_BITS - 1)
        byte = filters[f, (bit >> np.uint64(3)).astype(np.intp)]
        hit &= ((byte >> (bit & np.uint64(7)).astype(np.uint8)) & 1).astype(bool)
    users = np.flatnonzero(counts)
    starts = np.r_[0, np.cumsum(counts[users])[:-1]]
    out[users] = np.logical_or.reduceat(hit, starts, axis=0)
    return out
