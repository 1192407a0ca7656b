"""Apache Beam wiring: sources, PTransforms around `transforms`, shuffles, sinks and the CLI.

Importing the package runs `worker_setup`, which in a local SDK worker process (and only there)
starts the watch that ends the worker when its driver dies.
"""
from replaymill.pipeline import worker_setup as _worker_setup  # noqa: F401 - imported for its effect
