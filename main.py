"""Start PARE Studio: ``python main.py`` opens the window, ``python main.py CMD ...`` runs a command."""

from pare_studio.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
