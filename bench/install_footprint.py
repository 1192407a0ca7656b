"""Install footprint: venv size and package count of replaymill's core and of a full install.

    python bench/install_footprint.py --source . --work /tmp/footprint [--spec core=. --spec full=.[train,lora,gcp,aws]]

Each spec is installed into its own fresh venv (`pip install --no-cache-dir SOURCE[EXTRAS]`, the
CPU torch wheel first when the spec holds `train` or `lora`), then measured: bytes on disk of the
whole venv and the number of distributions `pip list` reports. A `--spec name=PATH` with another
source tree (an older checkout) measures that one the same way, so before/after figures come from
one run. Ratios are against the first spec.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TORCH = "torch==2.13.0"  # the CPU build `make setup` installs first


def du(path: Path) -> int:
    """Bytes of regular files under `path` (links not followed)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def measure(name: str, requirement: str, work: Path) -> dict:
    venv = work / f"venv-{name}"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
    start = time.perf_counter()
    needs_torch = any(extra in requirement for extra in ("train", "lora")) or requirement.endswith("!torch")
    requirement = requirement.removesuffix("!torch")
    if needs_torch:
        subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, requirement], check=True)
    seconds = time.perf_counter() - start
    listed = json.loads(subprocess.check_output([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"]))
    dists = [d["name"] for d in listed if d["name"] not in ("pip", "setuptools")]
    return {"name": name, "requirement": requirement, "bytes": du(venv), "packages": len(dists),
            "install_s": round(seconds, 1), "has_torch": "torch" in dists,
            "has_beam_gcp": "google-cloud-storage" in dists, "has_boto3": "boto3" in dists}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=".", help="the replaymill source tree (default: .)")
    parser.add_argument("--work", required=True, type=Path, help="folder for the venvs (removed venvs are not reused)")
    parser.add_argument("--spec", action="append", metavar="NAME=REQUIREMENT",
                        help="what to install; REQUIREMENT is a pip requirement, e.g. ./src[train] "
                             "(suffix !torch installs the CPU torch wheel first); repeatable")
    args = parser.parse_args()
    src = str(Path(args.source).resolve())
    specs = args.spec or [f"core={src}", f"full={src}[train,lora,gcp,aws]"]
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [measure(*spec.split("=", 1), args.work) for spec in specs]
    base = rows[0]
    print("| install | packages | venv size | x first | install time |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} (`{Path(r['requirement']).name}`) | {r['packages']} | {r['bytes'] / 2**30:.2f} GiB "
              f"| {r['bytes'] / base['bytes']:.2f} | {r['install_s']} s |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
