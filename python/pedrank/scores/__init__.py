"""The scores: one module per score, the registry beside them, and :func:`~pedrank.score` (scoring.py)
that runs any of them with or without PED. Each module registers its score in :mod:`.registry`."""
