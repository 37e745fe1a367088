"""Entry point of the packaged app (PyInstaller runs this file)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the model worker is a spawned copy of this executable
    from studio.__main__ import main

    sys.exit(main())
