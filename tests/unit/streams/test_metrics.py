import math

from prometheus_client import CollectorRegistry, generate_latest

from feedrec.streams.metrics import HitWindow, Metrics, histogram_quantile


def test_hit_window_slides() -> None:
    w = HitWindow(size=10)
    w.add(5, 5)
    assert w.rate == 1.0
    w.add(10, 0)
    assert w.rate == 0.0
    w.add(0, 0)
    assert w.rate == 0.0


def test_quantile_interpolates_inside_buckets() -> None:
    buckets = [(0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0)]
    assert math.isclose(histogram_quantile(0.5, buckets), 0.1)
    assert math.isclose(histogram_quantile(0.75, buckets), 0.15)
    base = [(0.1, 50.0), (0.2, 50.0), (float("inf"), 50.0)]
    assert math.isclose(histogram_quantile(0.5, buckets, base), 0.15)
    assert math.isnan(histogram_quantile(0.5, []))


def test_metrics_live_on_the_registry_given() -> None:
    reg = CollectorRegistry()
    m = Metrics.create(reg)
    m.events.labels("click").inc(3)
    text = generate_latest(reg).decode()
    assert 'feedrec_events_total{type="click"} 3.0' in text
    assert 'feedrec_invalid_events_total{reason="bad_json"} 0.0' in text
    assert "feedrec_event_to_recommendation_seconds_bucket" in text
    assert "feedrec_online_hit_rate" in text
    other = CollectorRegistry()
    Metrics.create(other)  # a second registry is independent, and creating it does not fail
    assert 'feedrec_events_total{type="click"} 0.0' in generate_latest(other).decode()
