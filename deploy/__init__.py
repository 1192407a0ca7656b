"""Running replaymill on a cluster: a loopback portable Beam cluster for tests, plus container and run configs."""
