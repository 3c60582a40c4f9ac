"""The default retrieval model: user and item embeddings with a sequence-aware user vector.

A user's query vector is their own embedding plus a recency-weighted mean of the embeddings of
their recent items, so a user seen once is already served by what they just looked at. Training
is a weighted sampled softmax over in-batch and uniformly sampled negatives, with sparse gradients
and SparseAdam so a step costs O(batch), not O(catalogue).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.base import RetrievalModel
from model.exceptions import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    dim: int = 32
    user_capacity: int = 200_000
    item_capacity: int = 200_000
    history_len: int = 20
    negatives: int = 64
    lr: float = 0.05
    l2: float = 1e-6
    #: Weight of the i-th most recent history item is ``history_decay ** i``.
    history_decay: float = 0.8
    init_std: float = 0.1
    seed: int = 0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """CUDA when present (or asked for), else CPU; decided once and logged by the caller."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("FEEDREC_DEVICE=cuda but no CUDA device is available; use auto or cpu")
    return torch.device(device)


class EmbeddingModel(RetrievalModel):
    def __init__(self, config: ModelConfig = ModelConfig(), device: str | torch.device = "auto"):
        self.config = config
        self.dim = config.dim
        self.device = resolve_device(device)
        self.version = 0
        self._gen = torch.Generator(device="cpu").manual_seed(config.seed)
        self.user_emb = torch.nn.Embedding(config.user_capacity, config.dim, sparse=True)
        self.item_emb = torch.nn.Embedding(config.item_capacity, config.dim, sparse=True)
        with torch.no_grad():
            self.user_emb.weight.zero_()
            self.item_emb.weight.copy_(
                torch.randn(config.item_capacity, config.dim, generator=self._gen) * config.init_std
            )
        self.user_emb.to(self.device)
        self.item_emb.to(self.device)
        self._decay = torch.tensor(
            [config.history_decay**i for i in range(config.history_len)], device=self.device
        )
        self.optimizer = torch.optim.SparseAdam(
            [self.user_emb.weight, self.item_emb.weight], lr=config.lr
        )
        self._items_used = 0
        self._dirty: list[np.ndarray] = []
        log.info("model on %s (dim %d)", self.device, config.dim)

    # -- helpers -----------------------------------------------------------------------------

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(self.device)

    def _query(self, users: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        h = hist[:, : self.config.history_len]
        mask = (h >= 0).float() * self._decay[: h.shape[1]]
        items = self.item_emb(h.clamp(min=0)) * mask.unsqueeze(-1)
        pooled = items.sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-6)
        known = (users >= 0).float().unsqueeze(-1)
        return self.user_emb(users.clamp(min=0)) * known + pooled

    # -- learning ----------------------------------------------------------------------------

    def learn_many(self, user_rows: np.ndarray, item_rows: np.ndarray, weights: np.ndarray,
                   histories: np.ndarray) -> float:
        if len(item_rows) == 0:
            return 0.0
        self._items_used = max(self._items_used, int(item_rows.max()) + 1)
        users = self._tensor(user_rows)
        pos = self._tensor(item_rows)
        hist = self._tensor(histories)
        w = torch.from_numpy(np.asarray(weights, dtype=np.float32)).to(self.device)
        neg = torch.randint(0, self._items_used, (self.config.negatives,), generator=self._gen)
        neg = neg.to(self.device)
        cand = torch.cat([pos, neg])
        q = self._query(users, hist)
        c = self.item_emb(cand)
        logits = q @ c.T
        # A candidate equal to the row's positive (a repeat in the batch) is not a negative.
        same = cand.unsqueeze(0) == pos.unsqueeze(1)
        target = torch.arange(len(pos), device=self.device)
        same[target, target] = False
        logits = logits.masked_fill(same, float("-inf"))
        loss = (F.cross_entropy(logits, target, reduction="none") * w).sum() / w.sum()
        if self.config.l2:
            loss = loss + self.config.l2 * (q.pow(2).sum() + c.pow(2).sum()) / len(pos)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.version += 1
        touched = [item_rows, neg.cpu().numpy(), histories[histories >= 0]]
        self._dirty.append(np.concatenate([np.asarray(t, dtype=np.int64) for t in touched]))
        return float(loss.detach())

    # -- serving -----------------------------------------------------------------------------

    @torch.no_grad()
    def user_vectors(self, user_rows: np.ndarray, histories: np.ndarray) -> np.ndarray:
        q = self._query(self._tensor(user_rows), self._tensor(histories))
        return q.float().cpu().numpy()

    @torch.no_grad()
    def item_vectors(self, rows: np.ndarray | None = None) -> np.ndarray:
        w = self.item_emb.weight
        out = w if rows is None else w[self._tensor(rows)]
        return out.float().cpu().numpy()

    def score(self, user_vecs: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        items = self.item_vectors(np.asarray(item_rows).reshape(-1)).reshape(*item_rows.shape, -1)
        return np.einsum("bd,bcd->bc", user_vecs, items)

    def pop_dirty_items(self) -> np.ndarray:
        if not self._dirty:
            return np.empty(0, dtype=np.int64)
        rows = np.unique(np.concatenate(self._dirty))
        self._dirty.clear()
        return rows

    # -- rows reused after eviction ----------------------------------------------------------

    @torch.no_grad()
    def _reset(self, emb: torch.nn.Embedding, rows: np.ndarray, std: float) -> None:
        if len(rows) == 0:
            return
        idx = self._tensor(rows)
        fresh = torch.randn(len(rows), self.dim, generator=self._gen) * std
        emb.weight[idx] = fresh.to(self.device)
        state = self.optimizer.state.get(emb.weight)
        if state:
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][idx] = 0

    def reset_users(self, rows: np.ndarray) -> None:
        self._reset(self.user_emb, rows, 0.0)

    def reset_items(self, rows: np.ndarray) -> None:
        self._reset(self.item_emb, rows, self.config.init_std)
        self._dirty.append(np.asarray(rows, dtype=np.int64))

    # -- checkpoints -------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "config": asdict(self.config),
            "version": self.version,
            "items_used": self._items_used,
            "user_emb": self.user_emb.weight.detach().cpu().clone(),
            "item_emb": self.item_emb.weight.detach().cpu().clone(),
            # A copy: the live optimizer keeps mutating its moment tensors in place.
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "rng": self._gen.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        saved = ModelConfig(**state["config"])
        if (saved.dim, saved.user_capacity, saved.item_capacity) != (
            self.config.dim, self.config.user_capacity, self.config.item_capacity
        ):
            raise ConfigError(
                f"checkpoint has dim/capacities {saved.dim}/{saved.user_capacity}/"
                f"{saved.item_capacity} but the settings ask for {self.config.dim}/"
                f"{self.config.user_capacity}/{self.config.item_capacity}: restore the settings "
                "or start from an empty FEEDREC_DATA_DIR"
            )
        with torch.no_grad():
            self.user_emb.weight.copy_(state["user_emb"].to(self.device))
            self.item_emb.weight.copy_(state["item_emb"].to(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self._gen.set_state(state["rng"])
        self.version = max(self.version, int(state["version"]))
        self._items_used = int(state["items_used"])
        self._dirty.clear()
