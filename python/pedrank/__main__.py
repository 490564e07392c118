"""``python -m pedrank``: the ``pedrank`` command (the same as the console script)."""

from pedrank.frontends.cli import main

raise SystemExit(main())
