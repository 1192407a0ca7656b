"""deploy/ validated without a cluster: every command in deploy/README.md parses with the real CLI,
every pipeline option with Beam's own parser, every manifest loads and has the expected kinds,
the trainer configs validate, and the Dockerfiles pass a lint written for them. The commands that
can run here run: `python -m deploy.local_cluster` below, the others in test_portable/s3/reshard.
"""
from __future__ import annotations

import collections
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import apache_beam
import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from replaymill.pipeline.cli import make_parser

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
README = DEPLOY / "README.md"

EXPECTED_KINDS = {
    "flink/namespace.yaml": ["Namespace", "ServiceAccount", "Role", "RoleBinding"],
    "flink/flink-session.yaml": ["FlinkDeployment"],
    "flink/beam-job-server.yaml": ["Deployment", "Service"],
    "spark/beam-job-server.yaml": ["Deployment", "Service"],
    "spark/worker-pool-daemonset.yaml": ["DaemonSet"],
    "train/job.yaml": ["ConfigMap", "Service", "Job"],
    "dask/dask-cluster.yaml": ["DaskCluster"],
}


def beam_unknown_options(flags: list[str]) -> list[str]:
    """Flags no PipelineOptions subclass defines (Beam itself only warns and drops them)."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    seen = set()
    stack = list(PipelineOptions.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(flags)
    PipelineOptions(flags).get_all_options()  # values must also convert to their types
    return unknown


def options_file(rel: str) -> list[str]:
    return [line.strip() for line in (DEPLOY / rel).read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def readme_commands() -> list[str]:
    """Shell commands in the README's bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for cmd in block.replace("\\\n", " ").splitlines():
            cmd = cmd.strip()
            if cmd and not cmd.startswith("#"):
                commands.append(cmd)
    return commands


def expand(cmd: str) -> list[str]:
    """shlex words of a command, with `$(grep -v '^#' deploy/X/options.txt)` replaced by that file's options."""
    match = re.search(r"\$\(grep -v '\^#' deploy/(\S+)\)", cmd)
    if match:
        cmd = cmd.replace(match.group(0), " ".join(options_file(match.group(1))))
    return shlex.split(cmd)


def check_replaymill_words(words: list[str]) -> None:
    """Parse with the real CLI parser; the Beam options after `--` with Beam's parser."""
    from replaymill.pipeline.options import make_options

    args = make_parser().parse_args(words)
    beam_args = getattr(args, "beam_args", None) or []
    if hasattr(args, "runner"):  # the runner's name resolves (and registers its options, e.g. --dask_*)
        make_options(args.runner, running_mode="in_memory", beam_args=beam_args)
    assert beam_unknown_options(beam_args) == [], words


def check_dask_words(words: list[str]) -> None:
    """`dask scheduler|worker ...` parsed by dask's own (click) command-line parser."""
    from distributed.cli import dask_scheduler, dask_worker

    command = {"scheduler": dask_scheduler.main, "worker": dask_worker.main}[words[1]]
    command.make_context(f"dask {words[1]}", words[2:])


@pytest.mark.parametrize("rel", ["dataflow/options.txt", "flink/options.txt", "spark/options.txt"])
def test_options_files_parse_with_beam(rel: str):
    flags = options_file(rel)
    assert flags and beam_unknown_options(flags) == []


def test_options_parse_to_what_the_runners_read():
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PortableOptions, WorkerOptions

    dataflow = PipelineOptions(options_file("dataflow/options.txt"))
    assert dataflow.view_as(GoogleCloudOptions).temp_location.startswith("gs://")
    assert dataflow.view_as(WorkerOptions).max_num_workers == 64
    assert dataflow.view_as(WorkerOptions).machine_type == "n2-standard-8"
    assert dataflow.view_as(WorkerOptions).sdk_container_image.endswith("replaymill-worker:0.1.0")
    for rel in ("flink/options.txt", "spark/options.txt"):
        portable = PipelineOptions(options_file(rel)).view_as(PortableOptions)
        assert portable.environment_type == "EXTERNAL" and portable.environment_config == "localhost:50000"


def test_every_readme_command_is_valid():
    commands = readme_commands()
    kinds = collections.Counter(c.split()[0] for c in commands)
    assert kinds["replaymill"] >= 6 and kinds["kubectl"] >= 5 and kinds["docker"] >= 3 and kinds["torchrun"] == 1
    for cmd in commands:
        words = expand(cmd)
        if words[0] == "replaymill":
            check_replaymill_words(words[1:])
        elif words[0] == "torchrun":
            check_replaymill_words(words[words.index("replaymill.pipeline.cli") + 1:])
        elif words[0] == "dask":
            check_dask_words(words)
        elif words[0] == "python":
            assert words[1:3] == ["-m", "replaymill.deploy.local_cluster"]
        elif words[0] in ("kubectl", "docker"):
            for i, w in enumerate(words):  # every file a command names exists
                if w == "-f":
                    assert (REPO / words[i + 1]).is_file(), cmd
        else:
            assert words[0] in ("helm", "pip"), f"unvalidated command in README: {cmd}"


@pytest.mark.parametrize("rel", sorted(EXPECTED_KINDS))
def test_manifests_load_with_expected_kinds(rel: str):
    docs = [d for d in yaml.safe_load_all((DEPLOY / rel).read_text()) if d]
    assert [d["kind"] for d in docs] == EXPECTED_KINDS[rel]
    for d in docs:
        assert d["apiVersion"] and d["metadata"]["name"]
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "replaymill"


def test_every_manifest_is_covered():
    on_disk = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*.yaml") if p.name != "train.yaml"}
    assert on_disk == set(EXPECTED_KINDS)


def test_worker_pools_and_job_servers_fit_together():
    flink = yaml.safe_load((DEPLOY / "flink/flink-session.yaml").read_text())
    sidecar = flink["spec"]["podTemplate"]["spec"]["containers"][1]
    assert sidecar["args"] == ["--worker_pool"] and sidecar["ports"][0]["containerPort"] == 50000
    beam_version = apache_beam.__version__
    for rel, runner in (("flink/beam-job-server.yaml", f"flink{flink['spec']['flinkVersion'][1:].replace('_', '.')}"),
                        ("spark/beam-job-server.yaml", "spark3")):
        deployment = next(yaml.safe_load_all((DEPLOY / rel).read_text()))
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"apache/beam_{runner}_job_server:{beam_version}"
        assert "--job-port=8099" in container["args"]
    flink_opts = PipelineOptions(options_file("flink/options.txt")).get_all_options()
    assert flink_opts["job_endpoint"].endswith(":8099")


def test_dask_cluster_runs_the_dask_image_with_valid_commands():
    cluster = next(yaml.safe_load_all((DEPLOY / "dask/dask-cluster.yaml").read_text()))
    scheduler = cluster["spec"]["scheduler"]["spec"]["containers"][0]
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert scheduler["image"] == worker["image"] and worker["image"].endswith("/replaymill-dask:0.1.0")
    assert "Dockerfile.dask -t REGISTRY/replaymill-dask:0.1.0" in README.read_text()
    check_dask_words(scheduler["args"])
    # the operator hands workers the scheduler's address in DASK_SCHEDULER_ADDRESS
    check_dask_words(worker["args"][:2] + ["tcp://scheduler:8786"] + worker["args"][2:])
    assert worker["args"][worker["args"].index("--nthreads") + 1] == "1"
    assert cluster["metadata"]["name"] + "-scheduler" in README.read_text()


def test_trainer_configs_validate_and_agree():
    from replaymill.trainer.config import TrainConfig

    file_cfg = TrainConfig.model_validate(yaml.safe_load((DEPLOY / "train/train.yaml").read_text()))
    docs = list(yaml.safe_load_all((DEPLOY / "train/job.yaml").read_text()))
    configmap = TrainConfig.model_validate(yaml.safe_load(docs[0]["data"]["train.yaml"]))
    assert file_cfg == configmap and file_cfg.replay_ratio > 0
    job = docs[2]["spec"]
    args = job["template"]["spec"]["containers"][0]["args"]
    assert job["completions"] == job["parallelism"] == int(next(a for a in args if a.startswith("--nnodes=")).split("=")[1])
    check_replaymill_words(args[args.index("replaymill.pipeline.cli") + 1:])


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = path.read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in (raw.strip() for raw in text.splitlines()) if line and not line.startswith("#")]


def dockerignore_allows(path: Path, rel: str) -> bool:
    """`**` then `!x` re-includes: the only shape the project's .dockerignore files use."""
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "**"
    return any(line.startswith("!") and rel.rstrip("/").startswith(line[1:].rstrip("/")) for line in lines)


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.train", "Dockerfile.dask"])
def test_dockerfile_lint(name: str):
    path = DEPLOY / name
    instructions = dockerfile_instructions(path)
    assert instructions[0][0] == "FROM"
    base = instructions[0][1]
    assert ":" in base and not base.endswith(":latest")
    if name == "Dockerfile":
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        assert base == f"apache/beam_python{py}_sdk:{apache_beam.__version__}", "worker image must match Beam and Python here"
        assert instructions[-1] == ("ENTRYPOINT", '["/opt/apache/beam/boot"]')
    if name == "Dockerfile.dask":  # client, scheduler and workers must agree on these versions
        import distributed

        assert base == f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
        assert ("ARG", f"BEAM_VERSION={apache_beam.__version__}") in instructions
        assert ("ARG", f"DASK_VERSION={distributed.__version__}") in instructions
    known = {"FROM", "ENV", "WORKDIR", "RUN", "COPY", "ENTRYPOINT", "CMD", "USER", "ARG", "LABEL"}
    ignore = path.with_name(name + ".dockerignore")
    for op, arg in instructions:
        assert op in known, f"{name}: unexpected instruction {op}"
        if op == "RUN" and "pip install" in arg:
            assert "--no-cache-dir" in arg, f"{name}: pip must not keep its cache in the image: {arg}"
        if op == "RUN":
            assert "apt-get install" not in arg or "rm -rf /var/lib/apt/lists" in arg
        if op == "COPY":
            *sources, _dest = arg.split()
            for src in sources:
                assert (REPO / src).exists(), f"{name}: COPY source {src} missing"
                assert dockerignore_allows(ignore, src), f"{name}: {src} excluded by {ignore.name}"
        if op in ("ENTRYPOINT", "CMD"):
            assert arg.startswith("["), f"{name}: {op} must be exec form"
    copied = {arg.split()[0].rstrip("/") for op, arg in instructions if op == "COPY"}
    import tomllib

    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    folders = {p.split(".")[1] for p in packages if p.count(".") >= 1} | {"__init__.py"}
    assert folders <= copied, "every installed package must be copied into the image"


def test_local_cluster_command_prints_working_options(tmp_path: Path):
    """`python -m deploy.local_cluster --pools 1`: prints options that reach a live job service, stops on Ctrl-C."""
    import grpc

    err = open(tmp_path / "stderr.txt", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "replaymill.deploy.local_cluster", "--pools", "1"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline().split()
        assert beam_unknown_options(line) == []
        opts = PipelineOptions(line).get_all_options()
        assert opts["runner"] == "PortableRunner" and opts["environment_type"] == "EXTERNAL"
        with grpc.insecure_channel(opts["job_endpoint"]) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = "no exit 60 s after Ctrl-C"
        err.seek(0)
        assert code == 0, f"{code}: {err.read()[-3000:]}"
