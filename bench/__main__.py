"""Run the benchmarks, each in its own process (so its peak memory is its own); each prints
one JSON line, with the framework floor or the limit it is measured against."""

import argparse
import asyncio
import json
import subprocess
import sys

from bench import delivery, digests, evaluation, scale, summaries, updates, wecom

BENCHMARKS = {
    "updates": updates.run,
    "broadcast": delivery.run_broadcast,
    "planning": delivery.run_planning,
    "summaries": summaries.run,
    "evaluation_ballots": evaluation.run_ballots,
    "evaluation_close": evaluation.run_close_round,
    "digests": digests.run_digests,
    "export": digests.run_export,
    "wecom": wecom.run,
    "wecom_broadcast": wecom.run_broadcast,
    "scale": scale.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)}; default all"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the workload")
    parser.add_argument("--here", action="store_true", help="run in this process (one benchmark)")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark: {', '.join(sorted(unknown))}")
    names = args.names or list(BENCHMARKS)
    if args.here:
        for name in names:
            run = BENCHMARKS[name]
            # A benchmark may run its own event loops (simulated time): then it is plain.
            lines = run(scale=args.scale)
            for line in lines if isinstance(lines, list) else asyncio.run(lines):
                print(json.dumps(line, ensure_ascii=False), flush=True)
        return 0
    for name in names:
        command = [sys.executable, "-m", "bench", name, "--here", "--scale", str(args.scale)]
        if subprocess.run(command).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
