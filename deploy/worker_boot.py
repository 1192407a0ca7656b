"""The SDK container's boot contract, in Python, for worker pools that run outside a container.

In Beam's SDK image, a worker pool (`/opt/apache/beam/boot --worker_pool`, as Flink and Spark run
it beside each task manager) starts every worker through `boot`, which fetches the job's pipeline
options from the runner's provision service and then runs `sdk_worker_main`. That entry point is
what applies the options inside the worker: `FileSystems.set_options(...)` (so s3:// reaches the
configured endpoint with the configured keys), log levels, the pickler. A plain
`worker_pool_main` without `--container_executable` skips all of it, so the loopback cluster in
`deploy.local_cluster` starts its workers through this module instead, to behave like the image.

    worker_pool_main --service_port=N --container_executable=<script running this module>
"""
from __future__ import annotations

import argparse
import os
import sys

import grpc
from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc
from google.protobuf import json_format


def fetch_pipeline_options(provision_endpoint: str, worker_id: str) -> str:
    """The job's pipeline options as JSON, from the runner's provision service."""
    with grpc.insecure_channel(provision_endpoint) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        response = stub.GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", worker_id)], timeout=60)
    return json_format.MessageToJson(response.info.pipeline_options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("id", "logging_endpoint", "artifact_endpoint", "provision_endpoint", "control_endpoint"):
        parser.add_argument(f"--{flag}", required=flag != "artifact_endpoint")
    args, _ = parser.parse_known_args(argv)
    env = dict(os.environ)
    env.update(
        WORKER_ID=args.id,
        PIPELINE_OPTIONS=fetch_pipeline_options(args.provision_endpoint, args.id),
        CONTROL_API_SERVICE_DESCRIPTOR=f'url: "{args.control_endpoint}"',
        LOGGING_API_SERVICE_DESCRIPTOR=f'url: "{args.logging_endpoint}"',
    )
    os.execve(sys.executable, [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"], env)
    return 0  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
