"""``feedrec`` command line: broker, worker, simulate, replay, demo, bench, settings."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from model.exceptions import FeedrecError
from model.methods import METHOD_NAMES
from streams.kafka import PRODUCER_LINGER_MS

log = logging.getLogger("feedrec")


def _cmd_broker(args: argparse.Namespace) -> int:
    from streams.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=args.port).start()
    print(f"embedded Kafka-protocol broker (Tansu) on {broker.bootstrap}; Ctrl-C stops it",
          flush=True)
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
    from streams.settings import Settings
    from streams.worker import run_worker

    run_worker(Settings.from_env(), loglevel=args.loglevel)
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from streams.producers import simulate
    from streams.settings import Settings

    s = Settings.from_env()
    sent = simulate(s, rate=args.rate, duration_s=args.duration, users=args.users,
                    items=args.items, seed=args.seed, feedback=not args.no_feedback)
    print(f"sent {sent} events", flush=True)
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from streams.producers import replay_file
    from streams.settings import Settings

    sent = replay_file(Settings.from_env(), args.path, speedup=args.speedup, limit=args.limit,
                       fav_as=args.fav_as)
    print(f"sent {sent} events", flush=True)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from streams.evaluation import run_evaluation

    run_evaluation(args.dataset, args.method or (), json_path=args.json, chart=args.chart,
                   fav_as=args.fav_as, limit=args.limit, score_browse=args.score_browse,
                   tune=args.tune)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(duration_s=args.duration, rate=args.rate, chart=args.chart, seed=args.seed)


def _cmd_bench(args: argparse.Namespace) -> int:
    from streams.bench import run_bench

    return run_bench(events=args.events, latency_rate=args.latency_rate,
                     latency_s=args.latency_seconds, output=args.output,
                     linger_ms=args.producer_linger_ms)


def _cmd_settings(args: argparse.Namespace) -> int:
    from streams.settings import settings_table

    print(settings_table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="feedrec", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("broker", help="run the embedded Kafka-protocol broker in the foreground")
    b.add_argument("--port", type=int, default=9092)
    b.set_defaults(func=_cmd_broker)

    w = sub.add_parser("worker", help="run the Faust worker")
    w.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"])
    w.set_defaults(func=_cmd_worker)

    s = sub.add_parser("simulate", help="publish a simulated closed-loop shop's events")
    s.add_argument("--rate", type=float, default=1000.0, help="events per second")
    s.add_argument("--duration", type=float, default=60.0, help="seconds")
    s.add_argument("--users", type=int, default=2000)
    s.add_argument("--items", type=int, default=5000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-feedback", action="store_true",
                   help="do not read recommendations (an open loop)")
    s.set_defaults(func=_cmd_simulate)

    r = sub.add_parser("replay", help="publish a dataset file in time order")
    r.add_argument("path")
    r.add_argument("--speedup", type=float, default=0.0,
                   help="divide the original gaps by this (0 = as fast as possible)")
    r.add_argument("--limit", type=int, default=None)
    r.add_argument("--fav-as", default=None, choices=["browse", "click", "cart", "purchase"],
                   help="map Taobao 'fav' to this type (default: dropped)")
    r.set_defaults(func=_cmd_replay)

    d = sub.add_parser("demo", help="broker + worker + simulator, live progress, chart")
    d.add_argument("--duration", type=float, default=120.0, help="seconds of simulated traffic")
    d.add_argument("--rate", type=float, default=600.0, help="events per second")
    d.add_argument("--chart", default="feedrec-demo.png")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_demo)

    e = sub.add_parser("evaluate", help="prequential evaluation of feedrec and the baselines")
    e.add_argument("--dataset", required=True,
                   help="a Taobao UserBehavior or generic CSV file, or sim / sim:N")
    e.add_argument("--method", action="append", choices=METHOD_NAMES,
                   help="repeat for several (default: all)")
    e.add_argument("--json", default=None, help="write the report window's metrics here")
    e.add_argument("--chart", default=None, help="PNG of HitRate@20 over time per method")
    e.add_argument("--limit", type=int, default=None, help="only the first N events")
    e.add_argument("--fav-as", default=None, choices=["browse", "click", "cart", "purchase"],
                   help="map Taobao 'fav' to this type (default: dropped)")
    e.add_argument("--score-browse", action="store_true",
                   help="also score browse events (reported under by_type only)")
    e.add_argument("--tune", action="store_true",
                   help="first choose feedrec's candidate-source settings on the tuning window "
                        "(the first 70%% of the time span) alone, then evaluate with them")
    e.set_defaults(func=_cmd_evaluate)

    n = sub.add_parser("bench", help="throughput and latency benchmark on the embedded broker")
    n.add_argument("--events", type=int, default=200_000)
    n.add_argument("--latency-rate", type=float, default=2000.0)
    n.add_argument("--latency-seconds", type=float, default=30.0)
    n.add_argument("--output", default=None, help="also write the figures as JSON here")
    n.add_argument("--producer-linger-ms", type=int, default=PRODUCER_LINGER_MS,
                   help="batching wait of every producer: the simulated shop's and the worker's")
    n.set_defaults(func=_cmd_bench)

    t = sub.add_parser("settings", help="print the settings table")
    t.set_defaults(func=_cmd_settings)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = args.command in ("demo", "bench", "evaluate")  # their own output is the report
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except FeedrecError as exc:
        print(f"feedrec: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
