"""``feedrec`` command line: broker, worker, simulate, replay, demo, bench, settings.

A user error (a bad setting or argument, a missing file, no broker) is one line on stderr,
``feedrec: <what is wrong and what to do>``, and a non-zero status; ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from feedrec.model.exceptions import FeedrecError
from feedrec.streams.kafka import PRODUCER_LINGER_MS
from feedrec.streams.tools.evaluation.registry import METHOD_NAMES

log = logging.getLogger("feedrec")

#: ``feedrec worker --loglevel`` choices and their levels.
WORKER_LOGLEVELS = {
    "crit": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def _number(
    parse: Callable[[str], float], low: float, what: str, high: float = float("inf")
) -> Callable[[str], float]:
    """An argparse ``type`` that accepts ``parse(text)`` within ``[low, high]`` (finite)."""

    def check(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not low <= value <= high or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    check.__name__ = what  # argparse names the type in some messages
    return check


class _Parser(argparse.ArgumentParser):
    """Reports a usage error in one line, like every other user error (``-h`` has the rest)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} -h`)\n")


_positive = _number(float, 1e-9, "a positive number")
_non_negative = _number(float, 0.0, "a number >= 0")
_count = _number(int, 1, "a whole number >= 1")
_non_negative_int = _number(int, 0, "a whole number >= 0")
_port = _number(int, 1, "a TCP port, 1-65535", 65535)


def _cmd_broker(args: argparse.Namespace) -> int:
    from feedrec.streams.tools.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=args.port).start()
    print(
        f"embedded Kafka-protocol broker (Tansu) on {broker.bootstrap}; Ctrl-C stops it", flush=True
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.is_set() and broker.proc is not None and broker.proc.poll() is None:
            done.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from feedrec.streams.settings import Settings
    from feedrec.streams.worker import run_worker

    run_worker(Settings.from_env(), loglevel=args.loglevel)
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from feedrec.streams.settings import Settings
    from feedrec.streams.tools.producers import simulate

    s = Settings.from_env()
    sent = simulate(
        s,
        rate=args.rate,
        duration_s=args.duration,
        users=args.users,
        items=args.items,
        seed=args.seed,
        feedback=not args.no_feedback,
    )
    print(f"sent {sent} events", flush=True)
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from feedrec.streams.settings import Settings
    from feedrec.streams.tools.producers import replay_file
    from feedrec.streams.tools.replay import check_dataset

    s = Settings.from_env()
    check_dataset(args.path)  # before waiting for a broker
    sent = replay_file(s, args.path, speedup=args.speedup, limit=args.limit, fav_as=args.fav_as)
    print(f"sent {sent} events", flush=True)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from feedrec.streams.tools.evaluation.report import run_evaluation

    run_evaluation(
        args.dataset,
        args.method or (),
        json_path=args.json,
        chart=args.chart,
        fav_as=args.fav_as,
        limit=args.limit,
        score_browse=args.score_browse,
        tune=args.tune,
        jobs=args.jobs,
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from feedrec.streams.tools.demo import run_demo

    return run_demo(duration_s=args.duration, rate=args.rate, chart=args.chart, seed=args.seed)


def _cmd_bench(args: argparse.Namespace) -> int:
    from feedrec.streams.tools.bench import run_bench

    return run_bench(
        events=args.events,
        latency_rate=args.latency_rate,
        latency_s=args.latency_seconds,
        output=args.output,
        linger_ms=args.producer_linger_ms,
    )


def _cmd_settings(args: argparse.Namespace) -> int:
    from feedrec.streams.settings import settings_table

    print(settings_table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="feedrec",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("broker", help="run the embedded Kafka-protocol broker in the foreground")
    b.add_argument("--port", type=_port, default=9092)
    b.set_defaults(func=_cmd_broker)

    w = sub.add_parser("worker", help="run the Faust worker")
    w.add_argument("--loglevel", default="warn", choices=list(WORKER_LOGLEVELS))
    w.set_defaults(func=_cmd_worker)

    s = sub.add_parser("simulate", help="publish a simulated closed-loop shop's events")
    s.add_argument("--rate", type=_positive, default=1000.0, help="events per second")
    s.add_argument("--duration", type=_positive, default=60.0, help="seconds")
    s.add_argument("--users", type=_count, default=2000)
    s.add_argument("--items", type=_count, default=5000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--no-feedback", action="store_true", help="do not read recommendations (an open loop)"
    )
    s.set_defaults(func=_cmd_simulate)

    r = sub.add_parser("replay", help="publish a dataset file in time order")
    r.add_argument("path")
    r.add_argument(
        "--speedup",
        type=_non_negative,
        default=0.0,
        help="divide the original gaps by this (0 = as fast as possible)",
    )
    r.add_argument("--limit", type=_non_negative_int, default=None)
    r.add_argument(
        "--fav-as",
        default=None,
        choices=["browse", "click", "cart", "purchase"],
        help="map Taobao 'fav' to this type (default: dropped)",
    )
    r.set_defaults(func=_cmd_replay)

    d = sub.add_parser("demo", help="broker + worker + simulator, live progress, chart")
    d.add_argument("--duration", type=_positive, default=120.0, help="seconds of simulated traffic")
    d.add_argument("--rate", type=_positive, default=600.0, help="events per second")
    d.add_argument("--chart", default="feedrec-demo.png")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_demo)

    e = sub.add_parser("evaluate", help="prequential evaluation of feedrec and the baselines")
    e.add_argument(
        "--dataset",
        required=True,
        help="a Taobao UserBehavior or generic CSV file, sim / sim:N (shop sessions) "
        "or sim-catalog / sim-catalog:N (long histories, no repeats)",
    )
    e.add_argument(
        "--method", action="append", choices=METHOD_NAMES, help="repeat for several (default: all)"
    )
    e.add_argument("--json", default=None, help="write the report window's metrics here")
    e.add_argument("--chart", default=None, help="PNG of HitRate@20 over time per method")
    e.add_argument("--limit", type=_count, default=None, help="only the first N events")
    e.add_argument(
        "--fav-as",
        default=None,
        choices=["browse", "click", "cart", "purchase"],
        help="map Taobao 'fav' to this type (default: dropped)",
    )
    e.add_argument(
        "--score-browse",
        action="store_true",
        help="also score browse events (reported under by_type only)",
    )
    e.add_argument(
        "--tune",
        action="store_true",
        help="first choose every method's variant from its grid on the tuning "
        "window (the first 70%% of the time span) alone, then evaluate with them",
    )
    e.add_argument(
        "--jobs",
        type=_count,
        default=None,
        help="methods evaluated at once, one process each (default: CPU cores)",
    )
    e.set_defaults(func=_cmd_evaluate)

    n = sub.add_parser("bench", help="throughput and latency benchmark on the embedded broker")
    n.add_argument("--events", type=_count, default=200_000)
    n.add_argument("--latency-rate", type=_positive, default=2000.0)
    n.add_argument("--latency-seconds", type=_positive, default=30.0)
    n.add_argument("--output", default=None, help="also write the figures as JSON here")
    n.add_argument(
        "--producer-linger-ms",
        type=_non_negative_int,
        default=PRODUCER_LINGER_MS,
        help="batching wait of every producer: the simulated shop's and the worker's",
    )
    n.set_defaults(func=_cmd_bench)

    t = sub.add_parser("settings", help="print the settings table")
    t.set_defaults(func=_cmd_settings)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = args.command in ("demo", "bench", "evaluate")  # their own output is the report
    level = logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO
    if args.command == "worker" and not args.verbose:
        # The worker's --loglevel holds from the start, not only once Faust sets up logging.
        level = WORKER_LOGLEVELS[args.loglevel]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # a dozen lines per start
    try:
        return int(args.func(args) or 0)
    except FeedrecError as exc:
        if args.verbose:
            traceback.print_exc()
        message = " ".join(str(exc).splitlines())
        print(f"feedrec: {message}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
