"""The front ends: the ``pedrank`` command (cli), ``pedrank demo`` (demo) and the figures (plot)."""
