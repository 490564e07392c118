"""``python -m pedrank.frontends.cli ARGS`` (and ``python -m pedrank.cli``): the ``pedrank`` command."""

from pedrank.frontends.cli.dispatch import entry

if __name__ == "__main__":
    entry()
