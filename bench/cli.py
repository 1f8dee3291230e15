"""How long an admin waits for each read-only command, on a config without channels.

    python -m bench.cli [--runs 5]

Runs `gateway check-config`, `status`, `report` and `faq ask` as an admin does (a new
process each time, config.example.toml on a migrated SQLite file), next to a bare
`python -c pass` (the interpreter's own start, the floor), and prints the median wall
time of each. Target: under 1 s each. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOOR = "python -c pass (the floor)"
COMMANDS: dict[str, list[str]] = {
    FLOOR: ["-c", "pass"],
    "gateway check-config": ["-m", "gateway", "check-config", "{config}"],
    "gateway status": ["-m", "gateway", "status", "--config", "{config}"],
    "gateway report": ["-m", "gateway", "report", "--config", "{config}"],
    "gateway faq ask": ["-m", "gateway", "faq", "ask", "--config", "{config}", "delivery?"],
}


def _seconds(args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return took


def measure(runs: int = 5, *, warm_up: bool = True) -> dict[str, float]:
    """Command -> median seconds over ``runs`` runs (after one warm-up run each, so the
    file cache holds the modules, as it does for an admin's second command)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(
            (ROOT / "config.example.toml")
            .read_text()
            .replace("sqlite+aiosqlite:///gateway.db", f"sqlite+aiosqlite:///{tmp}/gateway.db")
        )
        _seconds(["-m", "gateway", "migrate", "--config", str(config)])
        medians = {}
        for name, template in COMMANDS.items():
            args = [part.format(config=config) for part in template]
            if warm_up:
                _seconds(args)
            medians[name] = statistics.median(_seconds(args) for _ in range(runs))
        return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for name, seconds in measure(args.runs).items():
        print(f"{name:<28} {seconds:.2f} s")


if __name__ == "__main__":
    main()
