"""Run every benchmark; each prints one JSON line, with the framework floor of the same run."""

import argparse
import asyncio
import json

from bench import updates

BENCHMARKS = {"updates": updates.run}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="default: all")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the workload")
    args = parser.parse_args()
    for name in args.names or BENCHMARKS:
        for line in asyncio.run(BENCHMARKS[name](scale=args.scale)):
            print(json.dumps(line, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
