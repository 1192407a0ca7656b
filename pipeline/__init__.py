"""Apache Beam wiring: sources, PTransforms around `transforms`, shuffles, sinks and the CLI."""
