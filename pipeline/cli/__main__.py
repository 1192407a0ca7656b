"""`python -m replaymill.pipeline.cli` is the `replaymill` command (torchrun uses this form)."""
import sys

from replaymill.pipeline.cli import main

sys.exit(main())
