"""Post-quantum posture of the lab's TLS endpoints: netwarden vs the usual tools.

Starts the practice lab on 127.0.0.1, then runs, side by side in one run and on the
same endpoints:

- ``netwarden pq`` (all endpoints in one invocation, as a user would),
- nmap's ``ssl-enum-ciphers`` script (one invocation over all ports),
- ``testssl.sh -f`` (forward secrecy: the groups it knows), mass mode, parallel,
- ``sslscan`` (one invocation per endpoint, sequentially; it has no batch mode).

For each it prints wall time, peak RSS of the largest process, whether its output
names X25519MLKEM768 for the post-quantum endpoint, and the ratio of its wall time to
netwarden's. Tools that are not installed are reported as missing, not skipped
silently. Usage: ``python bench/pq_posture.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.lab import Lab

GNU_TIME = "/usr/bin/time"
TLS_ENDPOINTS = (
    "pq-tls",
    "classical-tls",
    "tls12-only",
    "expired",
    "wrong-host",
    "self-signed",
    "untrusted-chain",
    "mldsa",
)


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    output: str


def timed(argv: list[str]) -> Run:
    """Run one command; wall time, and its peak RSS as GNU time measures it.

    GNU time forks the tool from its own small process, so the figure is the
    tool's (largest process of its tree), not inherited from this Python process.
    """
    with tempfile.NamedTemporaryFile("w+") as rss, tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", rss.name, *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
        seconds = time.perf_counter() - started
        out.seek(0)
        kilobytes = int(rss.read().strip().splitlines()[-1])
        return Run(seconds, kilobytes / 1024, out.read())


def commands(lab: Lab, names: list[str], workdir: Path) -> dict[str, list[list[str]]]:
    addresses = [f"127.0.0.1:{lab.endpoints[n].port}" for n in names]
    ports = ",".join(str(lab.endpoints[n].port) for n in names)
    netwarden = Path(sys.executable).with_name("netwarden")
    targets = workdir / "targets.txt"
    targets.write_text("\n".join(addresses) + "\n")
    plan: dict[str, list[list[str]]] = {
        "netwarden pq": [[str(netwarden), "pq", "--json", *addresses]],
        "nmap ssl-enum-ciphers": [
            [
                "nmap",
                "-Pn",
                "-n",
                "-sT",
                "-p",
                ports,
                "--script",
                "ssl-enum-ciphers",
                "127.0.0.1",
            ]
        ],
        "testssl.sh -f": [
            [
                "testssl",
                "--quiet",
                "--color",
                "0",
                "--warnings",
                "off",
                "--parallel",
                "-f",
                "--file",
                str(targets),
            ]
        ],
        "sslscan": [["sslscan", "--no-colour", a] for a in addresses],
    }
    return plan


def measure(argvs: list[list[str]]) -> Run:
    runs = [timed(argv) for argv in argvs]
    return Run(
        sum(r.seconds for r in runs),
        max(r.max_rss_mb for r in runs),
        "\n".join(r.output for r in runs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per tool (median)")
    args = parser.parse_args()
    if not Path(GNU_TIME).exists():
        sys.exit("bench needs GNU time: apt-get install time")
    with Lab(names=TLS_ENDPOINTS) as lab, tempfile.TemporaryDirectory() as tmp:
        names = [n for n in TLS_ENDPOINTS if n in lab.endpoints]
        plan = commands(lab, names, Path(tmp))
        print(
            f"{len(names)} TLS endpoints on 127.0.0.1, {args.rounds} round(s), "
            f"median wall time\n"
        )
        results: dict[str, tuple[float, float, bool]] = {}
        for tool, argvs in plan.items():
            if shutil.which(argvs[0][0]) is None:
                print(f"{tool:24} not installed")
                continue
            runs = [measure(argvs) for _ in range(args.rounds)]
            wall = statistics.median(r.seconds for r in runs)
            rss = max(r.max_rss_mb for r in runs)
            results[tool] = (wall, rss, "X25519MLKEM768" in runs[-1].output)
        base_wall, base_rss, _ = results["netwarden pq"]
        header = (
            f"{'tool':24} {'wall s':>8} {'x netwarden':>12} {'peak RSS MB':>12} "
            f"{'x netwarden':>12}  sees X25519MLKEM768"
        )
        print(header)
        for tool, (wall, rss, sees) in results.items():
            print(
                f"{tool:24} {wall:8.2f} {wall / base_wall:12.1f} {rss:12.1f} "
                f"{rss / base_rss:12.2f}  {'yes' if sees else 'no'}"
            )


if __name__ == "__main__":
    main()
