"""The pipeline's settings, one frozen object per part, checked when built.

The worker builds them from its environment (:mod:`feedrec.streams.settings`); offline tools
and tests build them directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from feedrec.model.candidates import SourceConfig
from feedrec.model.events import EVENT_TYPES, EVENT_WEIGHTS, ValidationLimits
from feedrec.model.ranking import RankConfig
from feedrec.model.state import StateLimits
from feedrec.model.twotower import ModelConfig


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    state: StateLimits = field(default_factory=StateLimits)
    ranking: RankConfig = field(default_factory=RankConfig)
    sources: SourceConfig = field(default_factory=SourceConfig)
    validation: ValidationLimits = field(default_factory=ValidationLimits)
    #: Learning weight per event type.
    weights: Mapping[str, float] = field(default_factory=lambda: dict(EVENT_WEIGHTS))
    popularity_half_life_s: float = 1800.0
    index_refresh_interval_s: float = 1.0
    index_refresh_min_changes: int = 256
    #: Events per gradient step: small arriving batches are pooled until this many are waiting,
    #: or until the oldest has waited ``train_max_delay_s``. Many tiny steps learn worse than
    #: fewer larger ones (noisier gradients, one Adam step per handful of events).
    train_batch: int = 256
    train_max_delay_s: float = 1.0
    #: Events per gradient step replayed against their candidates to train the ranker (the
    #: clicks, carts and purchases first); 0 keeps the ranker's initial weights.
    ranker_sample: int = 32
    ranker_lr: float = 0.05

    def __post_init__(self) -> None:
        if self.ranker_sample < 0 or self.ranker_lr <= 0:
            raise ValueError(
                f"need ranker_sample >= 0 and ranker_lr > 0, got "
                f"{self.ranker_sample}, {self.ranker_lr}"
            )
        if self.train_batch < 1:
            raise ValueError(f"train_batch must be >= 1, got {self.train_batch}")
        if self.train_max_delay_s < 0:
            raise ValueError(f"train_max_delay_s must be >= 0, got {self.train_max_delay_s}")
        missing = set(EVENT_TYPES) - set(self.weights)
        if missing:
            raise ValueError(f"event weights missing for {sorted(missing)}")
