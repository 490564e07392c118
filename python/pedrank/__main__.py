"""``python -m pedrank``: the ``pedrank`` command (the same as the console script)."""

from pedrank.frontends.cli.dispatch import entry

if __name__ == "__main__":  # importing this module (pkgutil walks, docs) runs nothing
    entry()
