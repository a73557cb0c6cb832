"""A worker's memory at 10 to 10,000 configs, beside its floors, in one run (issue 29).

`python bench/memory.py [--sizes 10 1000 10000] [--breakdown]` starts `python app.py` on a tree of
each size (as many sealed secrets as configs), and bench/bare_app.py (bare Flask under the same
gunicorn settings, parsing the same YAML) on the smallest and the largest tree. Each server then
lives a worker's ordinary life: GET one config and list pages on many connections (both workers),
then edits on disk until every worker serves them (`run.edit_served`: the watcher reloads, the other
worker catches up). After each phase it prints the largest worker's PSS (its share of the pages it
still shares with the master) and RSS. `--breakdown` adds, for fidesmail's largest tree, where that
worker's memory lies (/proc/PID/smaps: anonymous memory vs. mapped files, private vs. shared).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402
import run  # noqa: E402

PHASES = ("started", "after GETs", "after edits")


def worker_memory(server: run.Server) -> tuple[float, float, int]:
    """(PSS MB, RSS MB, pid) of the server's largest worker by PSS."""
    workers = lib.children(server.proc.pid)
    if not workers:
        raise RuntimeError(f"{server.name} has no workers")
    pid = max(workers, key=lib.pss_kb)
    return lib.pss_kb(pid) / 1024, lib.rss_kb(pid) / 1024, pid


def serve_gets(server: run.Server, connections: int = 24, per_connection: int = 20) -> None:
    """GET one config and list pages on fresh connections, so that every worker serves some."""
    one, page = server.raw(server.one_path()), server.raw(run.LIST_PATH)
    for _ in range(connections):
        client = lib.RawClient(server.port)
        try:
            for i in range(per_connection):
                status, body = client.request(one if i % 2 else page)
                if status != 200:
                    raise lib.HTTPError(f"{server.name}: {status} {body[:200]!r}")
        finally:
            client.close()


def smaps_breakdown(pid: int) -> list[tuple[str, dict[str, int]]]:
    """kB by kind of mapping (heap and anonymous, each mapped file): Pss, Private, Shared."""
    totals: dict[str, dict[str, int]] = {}
    name = None
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            head = line.split()
            if not head[0].endswith(":") or "-" in head[0]:
                path = head[5] if len(head) > 5 else "[anon]"
                name = "[heap and anonymous]" if path in ("[anon]", "[heap]") else path
                totals.setdefault(name, {"Pss": 0, "Private": 0, "Shared": 0})
                continue
            field = head[0][:-1]
            if field == "Pss":
                totals[name]["Pss"] += int(head[1])
            elif field in ("Private_Clean", "Private_Dirty"):
                totals[name]["Private"] += int(head[1])
            elif field in ("Shared_Clean", "Shared_Dirty"):
                totals[name]["Shared"] += int(head[1])
    return sorted(totals.items(), key=lambda item: -item[1]["Pss"])


def measure(sizes: tuple[int, ...], tmp: Path, edits: int, breakdown: bool) -> tuple[dict, list]:
    bearer = lib.token()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    detail: list = []
    floors = {sizes[0], sizes[-1]}
    for n in sizes:
        tree = lib.make_tree(tmp / f"tree-{n}", n)
        servers = ([run.bare(f"bare Flask, {n:,} configs", tree, tmp)] if n in floors else []) \
            + [run.fidesmail(f"fidesmail, {n:,} configs", tree, tmp, bearer)]
        for server in servers:  # one server at a time: nothing else runs while it is measured
            run.note(f"{server.name}: started")
            lib.touch_workers(server.port, server.one_path(), server.bearer)
            time.sleep(1.0)  # the workers' start-up threads settle
            phases = {"started": worker_memory(server)[:2]}
            serve_gets(server)
            phases["after GETs"] = worker_memory(server)[:2]
            if server.bearer is not None:  # the bare app does not watch its tree
                for trial in range(edits):
                    if run.edit_served(server, trial) == float("inf"):
                        raise RuntimeError(f"{server.name}: an edit was not served within 10 s")
                serve_gets(server)
                time.sleep(1.0)
                phases["after edits"] = worker_memory(server)[:2]
                if breakdown and n == sizes[-1]:
                    detail = smaps_breakdown(worker_memory(server)[2])
            results[server.name] = phases
            lib.stop(server.proc)
    return results, detail


def render(results: dict, detail: list) -> str:
    lines = ["| server | " + " | ".join(f"worker PSS {p} (RSS)" for p in PHASES) + " |",
             "|---|" + "---|" * len(PHASES)]
    for name, phases in results.items():
        cells = [f"{phases[p][0]:.1f} MB ({phases[p][1]:.1f} MB)" if p in phases else "" for p in PHASES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if detail:
        lines += ["", "Largest worker at the largest tree, after edits, by mapping (kB):", "",
                  "| mapping | Pss | Private | Shared |", "|---|---|---|---|"]
        for name, kb in detail[:12]:
            lines.append(f"| {name} | {kb['Pss']:,} | {kb['Private']:,} | {kb['Shared']:,} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--edits", type=int, default=2, help="edits served per fidesmail server (default 2)")
    parser.add_argument("--breakdown", action="store_true", help="where the largest worker's memory lies")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fidesmail-memory-") as tmp:
        try:
            results, detail = measure(tuple(sorted(args.sizes)), Path(tmp), args.edits, args.breakdown)
        finally:
            lib.stop_all()
    print(render(results, detail))
    return 0


if __name__ == "__main__":
    sys.exit(main())
