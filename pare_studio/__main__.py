"""``python -m pare_studio``: same as the ``pare-studio`` console script."""

from pare_studio.cli import main

raise SystemExit(main())
