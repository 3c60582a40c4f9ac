"""Offline evaluation: the prequential protocol, the methods it compares, tuning and significance.

- :mod:`.protocol`: replay a stream "test, then train" and measure every method alike;
- :mod:`.base`: the contract of a method, and the parts the baselines share;
- one module per method: :mod:`.popularity`, :mod:`.covisitation`, :mod:`.sequential`,
  :mod:`.itemknn`, :mod:`.sknn` (session-kNN, V-SKNN), :mod:`.stan`, :mod:`.recent_category`,
  :mod:`.river_mf`, :mod:`.implicit_als`, and :mod:`.feedrec` (the worker's own pipeline);
- :mod:`.registry`: methods by name, each with the grid ``--tune`` searches;
- :mod:`.tuning`: choose each method's variant on the tuning window alone;
- :mod:`.bootstrap`: a paired bootstrap over users for the ratio of two hit rates.

The protocol and the methods do no I/O: :mod:`.datasets` reads datasets, :mod:`.report` writes
the results.
"""
