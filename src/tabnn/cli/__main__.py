"""``python -m tabnn.cli``: the ``tabnn`` command line."""

from . import main

if __name__ == "__main__":
    main()
