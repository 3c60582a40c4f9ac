"""A clock for tests: time passes only when the code under test sleeps (or a test moves it)."""

from __future__ import annotations


class SteppingClock:
    """A :class:`feedrec.model.clock.Clock` whose ``sleep`` moves it on, and which records every
    sleep; nothing else moves it but :attr:`t`."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.start_ms = start_ms
        #: Seconds since the start.
        self.t = 0.0
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        return self.start_ms + round(self.t * 1000)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, f"a sleep of {seconds} s"
        self.sleeps.append(seconds)
        self.t += seconds
