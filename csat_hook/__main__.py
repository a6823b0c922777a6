"""``python -m csat_hook`` is the ``csat-hook`` command."""

from csat_hook.cli import main

if __name__ == "__main__":
    main()
