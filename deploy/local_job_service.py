"""A Beam job service on loopback that runs each job on as many SDK workers as `--direct_num_workers` asks.

Beam's own `local_job_service_main` drives jobs with the FnApiRunner but always with one worker per
environment (it never reads `direct_num_workers`), so an external worker pool would only ever see
one worker. This module is the same service with that one thing changed, which is what lets the
tests and `bench/scaling.py` run a pipeline on two external worker pools at once.

    python -m deploy.local_job_service --port 0 --port_file /tmp/job.port
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time

from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.portability.api import beam_job_api_pb2
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import fn_runner


class ParallelBeamJob(local_job_service.BeamJob):
    """A BeamJob whose FnApiRunner starts `direct_num_workers` workers for each environment."""

    def _invoke_runner(self):
        self.set_state(beam_job_api_pb2.JobState.RUNNING)
        options = self.pipeline_options()
        runner = fn_runner.FnApiRunner(provision_info=self._provision_info)
        # FnApiRunner only reads direct_num_workers in run_pipeline(); jobs arriving as protos
        # go through run_via_runner_api(), which keeps its default of one worker.
        # Options come back from the Job API's JSON struct, so numbers may arrive as strings.
        runner._num_workers = max(1, int(options.view_as(DirectOptions).direct_num_workers or 1))
        return runner.run_via_runner_api(self._pipeline_proto, options)


def serve(port: int, port_file: str | None, staging_dir: str | None) -> None:
    """Serve the Job API until SIGTERM/SIGINT; write the bound port to `port_file` (atomically) if given."""
    servicer = local_job_service.LocalJobServicer(staging_dir, beam_job_type=ParallelBeamJob)
    bound = servicer.start_grpc_server(port)
    try:
        if port_file:
            with open(port_file + ".tmp", "w") as f:
                f.write(str(bound))
            os.replace(port_file + ".tmp", port_file)
        logging.info("job service listening on localhost:%d", bound)
        while True:
            time.sleep(3600)
    finally:
        servicer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="Job API port (0: any free port)")
    parser.add_argument("--port_file", help="write the bound port here once listening")
    parser.add_argument("--staging_dir", help="artifact staging directory (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args.port, args.port_file, args.staging_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
