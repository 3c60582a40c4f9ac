"""The steps a batch goes through, in order (:class:`feedrec.model.pipeline.Pipeline` chains
them): :mod:`.decode` -> :mod:`.fold` -> :mod:`.learn` -> :mod:`.retrieve` -> :mod:`.rank` ->
:mod:`.emit`. Each is a small object that owns its part of the pipeline's state, with
``state()``/``load()`` for checkpoints where it has any; a step uses another only through its
public methods, and reads what another owns through objects handed to it when built (see
docs/architecture.md for who owns what).
"""
