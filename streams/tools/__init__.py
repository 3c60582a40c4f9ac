"""Programs around the worker: the embedded broker, the simulators, dataset replay, the demo,
the benchmark and the offline evaluation. The worker (the adapters in :mod:`feedrec.streams`)
imports none of them."""
