"""Stress of the results store: identical sweeps started together on one store, one killed with ``kill -9``.

Three processes run the same ``imputebench run`` command on one new store. When about half of the
trials are stored, the process holding the most claims is killed with SIGKILL, and the same command
is started again in its place. When all have ended, the store must hold every trial exactly once,
and the attempts table (one row per computed attempt) may exceed the trial count by at most the
number of trials the killed process was running at the moment of the kill (their work is lost and
redone once their claims go stale, ``STALE_AFTER_S`` later). The report is written as Markdown.

    python benchmarks/store_stress.py --data-dir ../shared/datasets --max-epochs 30 \\
        --out benchmarks/results/store_stress.md
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from imputebench.runner.provenance import cpu_model, git_commit
from imputebench.runner.store import STALE_AFTER_S

SWEEP = ["--models", "mean,vae,miwae", "--datasets", "glass,yeast", "--ratios", "0.2,0.5", "--seeds", "2"]
TRIALS = 3 * 2 * 2 * 2
POLL_S = 0.5


def count(store: Path, sql: str, *args: object) -> int:
    """One number from the store, read while the sweeps write (0 while it does not exist yet)."""
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=60) as db:
            return db.execute(sql, args).fetchone()[0]
    except sqlite3.OperationalError:  # the store is being created
        return 0


def summary_line(log: Path) -> str:
    """The sweep's closing summary (its last paragraph, unwrapped), or a note that it has none."""
    paragraphs = [p for p in log.read_text().split("\n\n") if p.strip()]
    last = " ".join(paragraphs[-1].split()) if paragraphs else ""
    return last if last.startswith(f"{TRIALS} trials:") else "(no summary: killed)"


def start(command: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="store-stress-"))
    store = work / "stress.sqlite"
    command = [sys.executable, "-c", "from imputebench.cli import main; main()", "run", *SWEEP,
               "--max-epochs", str(args.max_epochs), "--data-dir", str(args.data_dir), "--store", str(store)]
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    began = time.perf_counter()
    sweeps = [start(command, work / f"sweep{i}.log") for i in range(args.sweeps)]
    while count(store, "SELECT COUNT(*) FROM trials") < TRIALS // 2:
        if all(s.poll() is not None for s in sweeps):
            sys.exit(f"every sweep ended before half the trials were stored; logs in {work}")
        time.sleep(POLL_S)
    claims = {s.pid: count(store, "SELECT COUNT(*) FROM claims WHERE owner LIKE ?", f"%:{s.pid}:%") for s in sweeps}
    victim = max(sweeps, key=lambda s: claims[s.pid])
    stored_at_kill = count(store, "SELECT COUNT(*) FROM trials")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_at = time.perf_counter() - began
    restarted = start(command, work / "restarted.log")
    codes = [s.wait() for s in [*sweeps, restarted] if s is not victim]
    wall = time.perf_counter() - began

    stored = count(store, "SELECT COUNT(*) FROM trials")
    distinct = count(store, "SELECT COUNT(DISTINCT config_hash) FROM trials")
    ok = count(store, "SELECT COUNT(*) FROM trials WHERE status = 'ok'")
    attempts = count(store, "SELECT COUNT(*) FROM attempts")
    left_claims = count(store, "SELECT COUNT(*) FROM claims")
    running = claims[victim.pid]
    checks = {
        "every trial stored exactly once": stored == distinct == TRIALS,
        "every trial ok": ok == TRIALS,
        f"attempts <= trials + running at the kill ({TRIALS} + {running})": attempts <= TRIALS + running,
        "no claim left": left_claims == 0,
        "surviving and restarted sweeps exited 0": codes == [0] * len(codes),
    }
    lines = [
        "# Store stress: identical sweeps on one store, one killed with kill -9",
        "",
        f"- command (each sweep): `imputebench run {shlex.join(SWEEP)} --max-epochs {args.max_epochs} "
        f"--data-dir {args.data_dir} --store STORE`",
        f"- {args.sweeps} sweeps started together; at {stored_at_kill} of {TRIALS} trials stored ({killed_at:.0f} s) "
        f"the sweep holding the most claims (pid {victim.pid}, {running} claimed) got SIGKILL and was started again",
        f"- claims held at the kill, by pid: {claims}",
        f"- stale claims are taken over after {STALE_AFTER_S:g} s without a heartbeat",
        f"- reproduce: `python benchmarks/store_stress.py --data-dir {args.data_dir} --max-epochs {args.max_epochs} "
        f"--out {args.out}`",
        f"- commit {git_commit()}, {cpu_model()} ({os.cpu_count()} cores), started {started_at}, wall {wall:.0f} s; "
        f"logs in {work}",
        "",
        "What each sweep said at its end (the killed one says nothing):",
        "",
        *[f"- {log.stem}: {summary_line(log)}" for log in sorted(work.glob("*.log"))],
        "",
        "| measure | value |",
        "|---|---|",
        f"| trials in the sweep | {TRIALS} |",
        f"| rows stored | {stored} |",
        f"| distinct trials stored | {distinct} |",
        f"| rows with status ok | {ok} |",
        f"| attempts computed and stored | {attempts} |",
        f"| trials running in the killed sweep at the kill | {running} |",
        f"| claims left at the end | {left_claims} |",
        "",
        "| check | result |",
        "|---|---|",
        *[f"| {name} | {'pass' if passed else 'FAIL'} |" for name, passed in checks.items()],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
