"""``python -m tabnn``: the ``tabnn`` command line."""

from .cli import main

if __name__ == "__main__":
    main()
