"""``python -m studio`` and the ``studio`` console script."""

import sys


def main() -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # the packaged app's model worker is a spawned copy of it
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
