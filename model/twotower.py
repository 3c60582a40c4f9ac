"""The default retrieval model: user and item embeddings with a sequence-aware user vector.

A user's query vector is their own embedding plus a recency-weighted mean of the embeddings of
their recent items, so a user seen once is already served by what they just looked at. Training
is a weighted sampled softmax over in-batch and uniformly sampled negatives. Only the rows a batch
touches are gathered, differentiated and updated (a lazy, row-wise Adam written out by hand), so a
step costs O(batch), never O(capacity): no optimizer ever walks the whole table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from feedrec.model.base import RetrievalModel
from feedrec.model.exceptions import CheckpointError, ConfigError

log = logging.getLogger(__name__)

#: Bumped when the layout of :class:`EmbeddingState` changes.
STATE_FORMAT = 2


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Hyperparameters; frozen so a running model's settings cannot drift under it."""

    dim: int = 32
    user_capacity: int = 200_000
    item_capacity: int = 200_000
    history_len: int = 20
    negatives: int = 64
    lr: float = 0.02
    l2: float = 1e-6
    seed: int = 0
    #: Weight of the i-th most recent history item is ``history_decay ** i``.
    history_decay: float = 0.8
    init_std: float = 0.1
    #: Whether gradients flow into the item embeddings read through the history (costs ~H x rows).
    train_history: bool = True
    #: At most this many in-batch positives serve as shared negatives (bounds the softmax width).
    in_batch_negatives: int = 1024
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        """Fail at construction, with the field named, rather than deep inside a training step."""
        positive = ("dim", "user_capacity", "item_capacity", "history_len", "lr")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("negatives", "in_batch_negatives", "l2", "init_std"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ModelConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.history_decay <= 1.0:
            raise ConfigError(
                f"ModelConfig.history_decay must be in (0, 1], got {self.history_decay}"
            )
        if not (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0):
            raise ConfigError("ModelConfig.beta1 and beta2 must be in [0, 1)")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """CUDA when present (or asked for), else CPU; decided once, at construction."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("FEEDREC_DEVICE=cuda but no CUDA device is available; use auto or cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}: expected auto, cpu or cuda[:N]") from exc


class _Table:
    """One embedding table with its Adam moments, updated lazily row by row."""

    __slots__ = ("weight", "moments")

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight
        #: Adam's first and second moments side by side: one gather and one scatter per step.
        self.moments = weight.new_zeros(weight.shape[0], 2, weight.shape[1])


class EmbeddingModel(RetrievalModel):
    """User + pooled-history query tower against an item embedding table (see module docstring)."""

    def __init__(
        self, config: ModelConfig | None = None, device: str | torch.device = "auto"
    ) -> None:
        self.config = cfg = config if config is not None else ModelConfig()
        self.dim = cfg.dim
        self.device = resolve_device(device)
        self.version = 0
        self._adam_t = 0
        self._gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        items = torch.randn(cfg.item_capacity, cfg.dim, generator=self._gen) * cfg.init_std
        self._users = _Table(torch.zeros(cfg.user_capacity, cfg.dim, device=self.device))
        self._items = _Table(items.to(self.device))
        self._decay = torch.tensor(
            [cfg.history_decay**i for i in range(cfg.history_len)], device=self.device
        )
        #: Tables in host memory are read through numpy views when serving (see user_vectors).
        self._on_host = self.device.type == "cpu"
        self._decay_host = self._decay.cpu().numpy().astype(np.float64)
        self._items_used = 0
        #: Rows past these were never handed out: checkpoints leave them out.
        self._users_used = 0
        self._dirty = np.zeros(cfg.item_capacity, dtype=bool)
        log.info(
            "model on %s (dim %d, %d users x %d items)",
            self.device,
            cfg.dim,
            cfg.user_capacity,
            cfg.item_capacity,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _long(self, a: np.ndarray) -> torch.Tensor:
        """int64 tensor on the model's device without a copy on CPU."""
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(self.device)

    def _check_rows(self, rows: np.ndarray, capacity: int, what: str) -> None:
        """Out-of-range rows would index garbage or crash inside torch with an opaque message."""
        if rows.size and (rows.max() >= capacity or rows.min() < -1):
            raise ValueError(
                f"{what} rows must lie in [-1, {capacity}); got {rows.min()}..{rows.max()}"
            )

    def _histories(self, histories: np.ndarray, batch: int) -> np.ndarray:
        """Histories cut (or padded with -1) to ``history_len`` columns."""
        h = np.asarray(histories, dtype=np.int64).reshape(batch, -1)
        n = self.config.history_len
        if h.shape[1] >= n:
            return h[:, :n]
        return np.pad(h, ((0, 0), (0, n - h.shape[1])), constant_values=-1)

    def _pool(self, table: torch.Tensor, idx: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        """Recency-weighted mean of ``table[idx]`` per row, -1 slots of ``hist`` masked out.

        ``embedding_bag`` never materialises the (B, H, dim) gather and has a fused backward.
        """
        mask = (hist >= 0).to(table.dtype) * self._decay[: hist.shape[1]]
        mask = mask / mask.sum(1, keepdim=True).clamp(min=1e-6)
        return F.embedding_bag(idx, table, per_sample_weights=mask, mode="sum")

    @staticmethod
    def _unique(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sorted distinct rows and, for every input, its position among them."""
        return torch.unique(rows, sorted=True, return_inverse=True)

    @staticmethod
    def _matches(left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every ``(i, j)`` with ``left[i] == right[j]``, by a sort and two binary searches
        instead of a ``(len(left), len(right))`` comparison (matches are few)."""
        order = torch.argsort(right)
        ordered = right[order]
        first = torch.searchsorted(ordered, left)
        counts = torch.searchsorted(ordered, left, right=True) - first
        i = torch.repeat_interleave(torch.arange(len(left), device=left.device), counts)
        # The k-th match overall is at ``first[i] + (k - matches before i)`` in ``ordered``.
        shift = torch.repeat_interleave(first - (torch.cumsum(counts, 0) - counts), counts)
        return i, order[shift + torch.arange(len(i), device=left.device)]

    # -- learning ----------------------------------------------------------------------------

    def learn_many(
        self,
        user_rows: np.ndarray,
        item_rows: np.ndarray,
        weights: np.ndarray,
        histories: np.ndarray,
    ) -> float:
        """One weighted sampled-softmax step touching only the batch's rows; returns the loss."""
        cfg = self.config
        item_rows = np.asarray(item_rows, dtype=np.int64).reshape(-1)
        b = len(item_rows)
        if b == 0:
            return 0.0
        user_rows = np.asarray(user_rows, dtype=np.int64).reshape(-1)
        weights = np.asarray(weights, dtype=np.float32).reshape(-1)
        if len(user_rows) != b or len(weights) != b:
            raise ValueError(
                f"user_rows ({len(user_rows)}), item_rows ({b}) and weights "
                f"({len(weights)}) must have the same length"
            )
        hist_np = self._histories(histories, b)
        if item_rows.min() < 0:
            raise ValueError("item_rows must be >= 0 (the positive item of every example)")
        self._check_rows(item_rows, cfg.item_capacity, "item")
        self._check_rows(hist_np, cfg.item_capacity, "history")
        self._check_rows(user_rows, cfg.user_capacity, "user")
        self._items_used = max(
            self._items_used, int(item_rows.max()) + 1, int(hist_np.max(initial=-1)) + 1
        )
        self._users_used = max(self._users_used, int(user_rows.max(initial=-1)) + 1)

        dev = self.device
        pos = self._long(item_rows)
        users = self._long(user_rows)
        hist = self._long(hist_np)
        w = torch.from_numpy(weights).to(dev)
        neg = torch.randint(0, self._items_used, (cfg.negatives,), generator=self._gen).to(dev)
        shared = pos
        if b > cfg.in_batch_negatives:
            pick = torch.randperm(b, generator=self._gen)[: cfg.in_batch_negatives].to(dev)
            shared = pos[pick]
        cand = torch.cat([shared, neg])

        # Every item row the step reads, once; trainable copies of just those rows.
        hmask = hist >= 0
        hist_valid = hist[hmask] if cfg.train_history else hist.new_empty(0)
        touched, inv = self._unique(torch.cat([pos, cand, hist_valid]))
        n_pos, n_cand = b, len(cand)
        pos_i, cand_i = inv[:n_pos], inv[n_pos : n_pos + n_cand]
        item_w = self._items.weight.index_select(0, touched).requires_grad_()
        if cfg.train_history:
            hist_i = torch.zeros_like(hist)
            hist_i[hmask] = inv[n_pos + n_cand :]
            pooled = self._pool(item_w, hist_i, hist)
        else:
            pooled = self._pool(self._items.weight, hist.clamp(min=0), hist)
        known = users >= 0
        u_rows, u_inv = self._unique(users[known])
        user_w = self._users.weight.index_select(0, u_rows).requires_grad_()
        # Unknown (-1) users read an extra zero row that is not trained.
        u_idx = torch.full((b,), len(u_rows), dtype=torch.long, device=dev)
        u_idx[known] = u_inv
        user_part = torch.cat([user_w, user_w.new_zeros(1, cfg.dim)])[u_idx]

        q = user_part + pooled
        logits = q @ item_w[cand_i].T
        # A candidate that is the example's own positive is not a negative for it.
        row, col = self._matches(pos_i, cand_i)
        minus_inf = torch.tensor(float("-inf"), device=dev)
        if shared is pos:
            # Column i is example i's positive: the target, so no extra column is needed.
            target = torch.arange(b, device=dev)
            other = row != col
            logits = logits.index_put_((row[other], col[other]), minus_inf)
        else:
            pos_logit = (q * item_w[pos_i]).sum(1, keepdim=True)
            logits = torch.cat([pos_logit, logits.index_put_((row, col), minus_inf)], dim=1)
            target = torch.zeros(b, dtype=torch.long, device=dev)
        per_example = F.cross_entropy(logits, target, reduction="none")
        loss = (per_example * w).sum() / w.sum().clamp(min=1e-12)
        loss.backward()

        self._adam_t += 1
        self._apply(self._items, touched, item_w)
        self._apply(self._users, u_rows, user_w)
        self.version += 1
        self._dirty[touched.cpu().numpy()] = True
        return float(loss.detach())

    @torch.no_grad()
    def _apply(self, table: _Table, rows: torch.Tensor, leaf: torch.Tensor) -> None:
        """Lazy Adam (L2 as weight decay) on distinct ``rows``; other rows are left untouched."""
        cfg = self.config
        grad = leaf.grad
        if grad is None or len(rows) == 0:
            return
        w = leaf.detach()
        if cfg.l2:
            grad = grad.add(w, alpha=cfg.l2)
        mv = table.moments.index_select(0, rows)
        m, v = mv[:, 0], mv[:, 1]
        m.mul_(cfg.beta1).add_(grad, alpha=1 - cfg.beta1)
        v.mul_(cfg.beta2).addcmul_(grad, grad, value=1 - cfg.beta2)
        table.moments.index_copy_(0, rows, mv)
        t = self._adam_t
        denom = v.div(1 - cfg.beta2**t).sqrt_().add_(cfg.eps)
        table.weight.index_copy_(0, rows, w.addcdiv(m, denom, value=-cfg.lr / (1 - cfg.beta1**t)))

    # -- serving -----------------------------------------------------------------------------

    @torch.no_grad()
    def user_vectors(self, user_rows: np.ndarray, histories: np.ndarray) -> np.ndarray:
        """Query vectors; a -1 user is served by its history alone."""
        user_rows = np.asarray(user_rows, dtype=np.int64).reshape(-1)
        hist_np = self._histories(histories, len(user_rows))
        self._check_rows(user_rows, self.config.user_capacity, "user")
        self._check_rows(hist_np, self.config.item_capacity, "history")
        if self._on_host:
            # Serving a handful of users is a few small gathers: numpy on views of the tables
            # costs a fraction of the same ops dispatched through torch.
            mask = (hist_np >= 0) * self._decay_host[: hist_np.shape[1]]
            mask /= np.maximum(mask.sum(1, keepdims=True), 1e-6)
            items = self._items.weight.numpy()[np.maximum(hist_np, 0)]
            q = np.einsum("bh,bhd->bd", mask.astype(np.float32), items)
            known = user_rows >= 0
            q[known] += self._users.weight.numpy()[user_rows[known]]
            return q
        users, hist = self._long(user_rows), self._long(hist_np)
        has_row = (users >= 0).unsqueeze(1).to(self._users.weight.dtype)
        vecs = self._users.weight[users.clamp(min=0)] * has_row
        vecs += self._pool(self._items.weight, hist.clamp(min=0), hist)
        return vecs.float().cpu().numpy()

    @torch.no_grad()
    def item_vectors(self, rows: np.ndarray | None = None) -> np.ndarray:
        """A copy (never a view of the live table, which keeps changing) of item vectors."""
        w = self._items.weight
        if rows is None:
            return w.float().cpu().numpy().copy()
        rows = np.asarray(rows, dtype=np.int64)
        self._check_rows(rows, self.config.item_capacity, "item")
        return (
            w[self._long(rows.reshape(-1)).clamp(min=0)]
            .float()
            .cpu()
            .numpy()
            .reshape(*rows.shape, self.dim)
        )

    @torch.no_grad()
    def score(self, user_vecs: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """Dot products of each user vector with its own candidates; -1 candidates score -inf."""
        rows = np.asarray(item_rows, dtype=np.int64)
        b = len(rows)
        rows = rows.reshape(b, -1)
        self._check_rows(rows, self.config.item_capacity, "item")
        if self._on_host:
            items = self._items.weight.numpy()[np.maximum(rows, 0)]
            out = np.einsum("bd,bcd->bc", np.asarray(user_vecs, np.float32).reshape(b, -1), items)
            return np.where(rows >= 0, out, -np.inf).astype(np.float32)
        vecs = torch.from_numpy(np.ascontiguousarray(user_vecs, dtype=np.float32)).to(self.device)
        r = self._long(rows)
        scores = torch.einsum(
            "bd,bcd->bc", vecs.reshape(b, self.dim), self._items.weight[r.clamp(min=0)]
        )
        return scores.masked_fill(r < 0, float("-inf")).cpu().numpy()

    def pop_dirty_items(self) -> np.ndarray:
        """Rows changed since the last call, sorted; O(capacity / 8) bytes scanned, no Python loop."""
        rows = np.flatnonzero(self._dirty)
        self._dirty[rows] = False
        return rows.astype(np.int64, copy=False)

    # -- rows reused after eviction ----------------------------------------------------------

    @torch.no_grad()
    def _reset(self, table: _Table, rows: np.ndarray, std: float) -> torch.Tensor | None:
        """Fresh weights and zero moments, so a new id inherits nothing from the evicted one."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if len(rows) == 0:
            return None
        idx = self._long(rows)
        fresh = torch.randn(len(rows), self.dim, generator=self._gen) * std
        table.weight[idx] = fresh.to(self.device)
        table.moments[idx] = 0.0
        return idx

    def reset_users(self, rows: np.ndarray) -> None:
        """New users start from zero: their history carries them until they have a vector."""
        self._check_rows(np.asarray(rows), self.config.user_capacity, "user")
        self._reset(self._users, rows, 0.0)

    def reset_items(self, rows: np.ndarray) -> None:
        """New items start from small random vectors (and must reach the index again)."""
        rows = np.asarray(rows, dtype=np.int64)
        self._check_rows(rows, self.config.item_capacity, "item")
        if self._reset(self._items, rows, self.config.init_std) is not None:
            self._dirty[rows] = True

    # -- checkpoints -------------------------------------------------------------------------

    def state(self) -> EmbeddingState:
        """CPU copies (the live tensors keep changing) of weights, moments, counters and RNG."""

        def cpu(t: torch.Tensor, rows: int) -> torch.Tensor:
            return t[:rows].detach().to("cpu", copy=True)

        nu, ni = self._users_used, self._items_used
        return EmbeddingState(
            format=STATE_FORMAT,
            config=self.config,
            version=self.version,
            adam_t=self._adam_t,
            items_used=ni,
            users_used=nu,
            user_emb=cpu(self._users.weight, nu),
            item_emb=cpu(self._items.weight, ni),
            user_moments=cpu(self._users.moments, nu),
            item_moments=cpu(self._items.moments, ni),
            rng=self._gen.get_state(),
        )

    def load(self, state: EmbeddingState) -> None:
        """Restore a :meth:`state`; refuse shapes that do not fit this model's settings."""
        if state.format != STATE_FORMAT:
            raise CheckpointError(
                f"model state has format {state.format!r}, this code reads {STATE_FORMAT}: "
                "it was written by another version of feedrec; start from an empty "
                "FEEDREC_DATA_DIR"
            )
        saved = state.config
        ours = (self.config.dim, self.config.user_capacity, self.config.item_capacity)
        theirs = (saved.dim, saved.user_capacity, saved.item_capacity)
        if ours != theirs:
            raise ConfigError(
                f"checkpoint has dim/capacities {'/'.join(map(str, theirs))} but the settings "
                f"ask for {'/'.join(map(str, ours))}: restore the settings or start from an "
                "empty FEEDREC_DATA_DIR"
            )
        with torch.no_grad():
            for table, weight, moments in (
                (self._users, state.user_emb, state.user_moments),
                (self._items, state.item_emb, state.item_moments),
            ):
                table.weight[: len(weight)].copy_(weight.to(self.device))
                table.moments[: len(weight)].copy_(moments.to(self.device))
        self._gen.set_state(state.rng)
        self.version = max(self.version, int(state.version))
        self._adam_t = int(state.adam_t)
        self._items_used = int(state.items_used)
        self._users_used = int(state.users_used)
        self._dirty[:] = False


@dataclass(frozen=True, slots=True)
class EmbeddingState:
    """An :class:`EmbeddingModel` in a checkpoint: the rows in use of both tables with their
    Adam moments, the step counters and the sampling RNG."""

    format: int
    config: ModelConfig
    version: int
    adam_t: int
    items_used: int
    users_used: int
    user_emb: torch.Tensor
    item_emb: torch.Tensor
    user_moments: torch.Tensor
    item_moments: torch.Tensor
    rng: torch.Tensor
