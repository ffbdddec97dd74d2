#!/usr/bin/env python3
"""The peer job side by side: `intent replay` against plain Python and
Bytewax on the same workload, alternating runs, in one go.

    python3 benches/peer-job/run.py [--rounds 3] [--events 1000000] [--no-bytewax]
                                    [--peer-dir ../shared/peer-job] [--work target/peer-job]
                                    [--intent-bin target/release/intent]

It generates the workload with the peer's gen_events.py (deterministic),
checks that the generator's phrases are the ones in signal-defs/, converts
the events to intent's contract (convert.py; not timed), builds
`intent` in release unless --intent-bin is given, installs Bytewax 0.21.1
in a throw-away venv, then runs each system --rounds times, alternating,
and prints CPU seconds (user + sys of the process), wall time, peak RSS and
events/s (medians), the ratios against intent, and whether intent's
actions equal the reference's as a multiset of (rule/type, account, ts).
"""
import argparse
import collections
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def run_measured(cmd, cwd=None, env=None, stdout=None):
    """Runs cmd; returns (cpu seconds, wall seconds, peak RSS MiB) of the child."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{stderr}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024


def rfc3339_ms(text):
    d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(round(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))


def ours_multiset(path):
    with open(path) as f:
        return collections.Counter(
            (a["rule"], a["account"], rfc3339_ms(a["event_ts"])) for a in map(json.loads, f))


def reference_multiset(path):
    with open(path) as f:
        return collections.Counter((a["type"], a["account"], a["ts"]) for a in map(json.loads, f))


def check_phrases(phrases_txt):
    """The generator's phrases must be the library's, in order."""
    import tomllib
    with open(HERE / "signal-defs" / "phrases.toml", "rb") as f:
        library = tomllib.load(f)["library"][0]["phrases"]
    generated = [l.strip() for l in open(phrases_txt) if l.strip()]
    if generated != library:
        sys.exit("phrases.txt differs from benches/peer-job/signal-defs/phrases.toml: "
                 "regenerate the library from gen_events.py's PHRASES")


def prepare(args, work):
    events = work / "events.jsonl"
    if not events.exists() or args.regenerate:
        subprocess.run([sys.executable, str(args.peer_dir / "gen_events.py"), "--n", str(args.events),
                        "--out", str(events), "--phrases", str(work / "phrases.txt")], check=True)
        subprocess.run([sys.executable, str(HERE / "convert.py"), str(events),
                        str(work / "intent-events.jsonl")], check=True)
    check_phrases(work / "phrases.txt")
    if args.intent_bin is None:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "intent-cli", "--bin", "intent"],
                       cwd=ROOT, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        args.intent_bin = target / "release" / "intent"


def bytewax_python(work):
    venv = work / "bytewax-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "bytewax==0.21.1", "snowballstemmer"], check=True)
    return python


def systems(args, work):
    ev, ph = str(work / "events.jsonl"), str(work / "phrases.txt")
    out = {}

    def intent():
        with open(work / "intent-actions.jsonl", "wb") as f:
            return run_measured([str(args.intent_bin), "replay", str(work / "intent-events.jsonl"),
                                 "--signals", str(HERE / "signal-defs"), "--lateness", "500ms",
                                 "--until", "2100-01-01T00:00:00Z", "--quiet"], stdout=f)
    out["intent replay"] = intent
    out["plain Python"] = lambda: run_measured(
        [sys.executable, "job_python.py", ev, ph, str(work / "python-actions.jsonl")], cwd=args.peer_dir)
    if not args.no_bytewax:
        python = bytewax_python(work)
        env = dict(os.environ, EVENTS=ev, PHRASES=ph, OUT=str(work / "bytewax-actions.jsonl"))
        out["Bytewax 0.21.1"] = lambda: run_measured(
            [str(python), "-m", "bytewax.run", "job_bytewax:flow"], cwd=args.peer_dir, env=env)
    return out


def report(results, n_events, work):
    names = list(results)
    med = {n: [statistics.median(x[i] for x in results[n]) for i in range(3)] for n in names}
    ours = med["intent replay"][0]
    print(f"\n{'system':<16} {'CPU s':>8} {'wall s':>8} {'peak RSS':>10} {'events/s':>11} {'CPU vs intent':>14}")
    for n in names:
        cpu, wall, rss = med[n]
        print(f"{n:<16} {cpu:>8.2f} {wall:>8.2f} {rss:>7.0f} MiB {n_events / wall:>11,.0f} {cpu / ours:>13.2f}x")
    print("(medians of", len(results[names[0]]), "alternated runs; CPU = user + sys)")
    ours_set = ours_multiset(work / "intent-actions.jsonl")
    ref = reference_multiset(work / "python-actions.jsonl")
    same = sum((ours_set & ref).values())
    by_type = collections.Counter(t for (t, _, _), k in ref.items() for _ in range(k))
    print(f"\nactions: intent {sum(ours_set.values())}, reference {sum(ref.values())} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(by_type.items()))}); identical {same}")
    if ours_set == ref:
        print("intent's actions equal the reference's")
    else:
        for label, diff in (("only intent", ours_set - ref), ("only reference", ref - ours_set)):
            print(f"{label}: {sum(diff.values())}, e.g. {sorted(diff)[:3]}")
    return ours_set == ref


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--peer-dir", type=Path, default=ROOT.parent / "shared" / "peer-job")
    ap.add_argument("--work", type=Path, default=ROOT / "target" / "peer-job")
    ap.add_argument("--intent-bin", type=Path)
    ap.add_argument("--no-bytewax", action="store_true")
    ap.add_argument("--regenerate", action="store_true")
    args = ap.parse_args()
    args.peer_dir = args.peer_dir.resolve()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    prepare(args, work)
    runs = systems(args, work)
    results = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, run in runs.items():
            results[name].append(run())
            cpu, wall, rss = results[name][-1]
            print(f"round {r + 1}: {name:<16} CPU {cpu:6.2f} s  wall {wall:6.2f} s  RSS {rss:5.0f} MiB",
                  flush=True)
    equal = report(results, args.events, work)
    sys.exit(0 if equal else 1)


if __name__ == "__main__":
    main()
