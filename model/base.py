"""The contract every retrieval model honours, so the pipeline, the index and the tests can swap them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch


class RetrievalModel(ABC):
    """Item embeddings plus a user representation, learnt one micro-batch at a time.

    Rows are dense integer ids handed out by :class:`feedrec.model.vocab.IdMap`; a history is a
    ``(B, H)`` array of item rows, most recent first, padded with -1.
    """

    dim: int
    device: torch.device
    #: Training steps applied so far; never decreases.
    version: int

    @abstractmethod
    def learn_many(
        self,
        user_rows: np.ndarray,
        item_rows: np.ndarray,
        weights: np.ndarray,
        histories: np.ndarray,
    ) -> float:
        """One weighted gradient step on (user, positive item) pairs; returns the loss."""

    @abstractmethod
    def user_vectors(self, user_rows: np.ndarray, histories: np.ndarray) -> np.ndarray:
        """``(B, dim)`` float32 query vectors; a row of -1 is a user with no embedding yet."""

    @abstractmethod
    def item_vectors(self, rows: np.ndarray | None = None) -> np.ndarray:
        """``(N, dim)`` float32 item vectors for ``rows`` (every row when ``None``)."""

    @abstractmethod
    def score(self, user_vecs: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """Scores of ``(B, C)`` item rows against ``(B, dim)`` user vectors."""

    @abstractmethod
    def reset_users(self, rows: np.ndarray) -> None:
        """Re-initialise rows handed to new users after an eviction."""

    @abstractmethod
    def reset_items(self, rows: np.ndarray) -> None:
        """Re-initialise rows handed to new items after an eviction."""

    @abstractmethod
    def pop_dirty_items(self) -> np.ndarray:
        """Item rows whose vectors changed since the last call (for incremental index refresh)."""

    @abstractmethod
    def state(self) -> Any:
        """Everything needed to rebuild the model exactly (a dataclass of CPU tensors and plain
        data, written into checkpoints)."""

    @abstractmethod
    def load(self, state: Any) -> None:
        """Restore a :meth:`state`."""
