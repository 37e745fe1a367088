"""The model worker: ``protocol`` (the requests and takes, plain dataclasses), ``client`` (the editor's
side, no torch) and ``server`` (the process that runs the jobs).  Importing this package imports none
of them, so the editor pays only for what it uses."""
