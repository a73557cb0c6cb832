"""fidesmail measured against its floors, at 10 to 10,000 configs (issue 6).

`python bench/run.py [--quick]` prints a markdown table and writes it to bench/RESULTS.md with the
machine's description. Every server is a real gunicorn process on 127.0.0.1 (ports picked free),
every tree lives under one temp dir, and every process is killed at the end, however the run ends.

- API latency: fidesmail (`python app.py`) beside bench/bare_app.py (bare Flask, same JSON, same
  gunicorn settings), rounds interleaved: p50/p99 at 1 client, req/s at 8 client processes.
- Send: bench/send.py's figures (fidesmail vs a direct requests.Session post to the test Mailgun).
- Send through each provider: bench/providers.py's figures (SendGrid, Mailchimp Transactional and SES through
  fidesmail vs the same request sent directly to each stand-in; SES beside a bare boto3 send_email to moto).
- Message records: bench/records.py's figures (GET one record beside GET one config, the list by
  reference and by `to`, bytes per record) at 10 and 1,000,000 records, on SQLite and PostgreSQL.
- Webhook intake: bench/webhooks.py's figures (a signed event taken in, beside GET one config), on
  SQLite and PostgreSQL.
- Outbox: bench/outbox.py's figures (202 accepts beside GET one config, draining a queue beside direct
  posts), on SQLite and on 3 replicas sharing a throwaway PostgreSQL.
- Limits and evidence: bench/limits.py's figures (a send with the verification limit and a rate_limit
  beside one without, the evidence bundle of 20 records beside their list, a paced burst's drain).
- Scale: 10, 1,000 and 10,000 configs with as many sealed secrets: start to first /health 200,
  GET one and a list page (interleaved across the three servers), an edit on disk until every
  worker serves it, `flask check` over the tree, worker memory, idle CPU.
- Idle: memory of the process tree and CPU over an idle window (30 s; 5 s with --quick).
`--smoke` runs the smallest form (10 configs, few requests) and writes to --out (for the test).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import callbacks as callbacks_bench  # noqa: E402
import compare  # noqa: E402
import lib  # noqa: E402
import limits as limits_bench  # noqa: E402
import outbox as outbox_bench  # noqa: E402
import provider_events as provider_events_bench  # noqa: E402
import providers as providers_bench  # noqa: E402
import records as records_bench  # noqa: E402
import send as send_bench  # noqa: E402
import webhooks as webhooks_bench  # noqa: E402
from send import met, ms, table  # noqa: E402

PROFILES = {
    "full": {"sizes": (10, 1000, 10000), "rounds": 4, "per_round": 1500, "rps_rounds": 2, "rps_seconds": 3.0,
             "scale_rounds": 3, "scale_per_round": 500, "edit_trials": 3, "idle_seconds": 30.0,
             "send": send_bench.PROFILES["full"], "outbox": outbox_bench.PROFILES["full"],
              "records": records_bench.PROFILES["full"], "webhooks": webhooks_bench.PROFILES["full"],
              "provider_events": provider_events_bench.PROFILES["full"],
              "callbacks": callbacks_bench.PROFILES["full"],
              "limits": limits_bench.PROFILES["full"]},
    "quick": {"sizes": (10, 1000, 10000), "rounds": 2, "per_round": 500, "rps_rounds": 1, "rps_seconds": 1.5,
              "scale_rounds": 2, "scale_per_round": 200, "edit_trials": 1, "idle_seconds": 5.0,
              "send": send_bench.PROFILES["quick"], "outbox": outbox_bench.PROFILES["quick"],
              "records": records_bench.PROFILES["quick"], "webhooks": webhooks_bench.PROFILES["quick"],
              "provider_events": provider_events_bench.PROFILES["quick"],
              "callbacks": callbacks_bench.PROFILES["quick"],
              "limits": limits_bench.PROFILES["quick"]},
    "smoke": {"sizes": (10,), "rounds": 1, "per_round": 30, "rps_rounds": 1, "rps_seconds": 0.5,
              "scale_rounds": 1, "scale_per_round": 20, "edit_trials": 1, "idle_seconds": 1.0,
              "send": send_bench.PROFILES["smoke"], "outbox": outbox_bench.PROFILES["smoke"],
              "records": records_bench.PROFILES["smoke"], "webhooks": webhooks_bench.PROFILES["smoke"],
              "provider_events": provider_events_bench.PROFILES["smoke"],
              "callbacks": callbacks_bench.PROFILES["smoke"],
              "limits": limits_bench.PROFILES["smoke"]},
}
ONE_PATH = "/api/v1/email/config/{key}"
LIST_PATH = "/api/v1/email/config?page=1&size=50"
FLASK_CHECK_TIMEOUT = 120


def note(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- servers ----------------------------------------------------------------------------------

class Server:
    """A running fidesmail (or bare) process on one tree."""

    def __init__(self, name: str, argv: list[str], tree: dict, tmp: Path, bearer: str | None):
        self.name, self.tree, self.bearer = name, tree, bearer
        self.port = lib.free_port()
        self.proc, self.start_seconds = lib.start_server(argv, lib.server_env(tree, self.port),
                                                         tmp / f"{name}.log", self.port)
        self.key = lib.config_key(tree["count"] // 2)

    def raw(self, path: str) -> bytes:
        return lib.get_request(self.port, path, self.bearer)

    def one_path(self) -> str:
        return ONE_PATH.format(key=self.key)

    def call(self, path: str):
        return lib.checked(lib.RawClient(self.port), self.raw(path))

    def factory(self, path: str):
        port, raw = self.port, self.raw(path)
        return lambda: lib.checked(lib.RawClient(port), raw)


def fidesmail(name, tree, tmp, bearer) -> Server:
    return Server(name, [lib.PY, "app.py"], tree, tmp, bearer)


def bare(name, tree, tmp) -> Server:
    return Server(name, [lib.PY, str(lib.ROOT / "bench" / "bare_app.py")], tree, tmp, None)


def interleaved(servers: list[Server], path_of, rounds: int, per_round: int) -> dict[str, list[float]]:
    """Latencies at 1 client, the servers taking turns round by round (noise hits them alike)."""
    samples = {s.name: [] for s in servers}
    calls = {s.name: s.call(path_of(s)) for s in servers}
    for _ in range(rounds):
        for server in servers:
            samples[server.name].extend(lib.latencies(calls[server.name], per_round, warmup=20))
    return samples


def interleaved_rps(servers: list[Server], path_of, rounds: int, seconds: float, clients: int = 8) -> dict:
    totals = {s.name: [] for s in servers}
    for _ in range(rounds):
        for server in servers:
            totals[server.name].append(lib.throughput(server.factory(path_of(server)), clients, seconds))
    return {name: sum(values) / len(values) for name, values in totals.items()}


# --- measurements -----------------------------------------------------------------------------

def api_latency(fm: Server, floor: Server, profile: dict) -> dict:
    out = {}
    for what, path_of in (("one", Server.one_path), ("list", lambda s: LIST_PATH)):
        same = lib.fetch(fm.port, path_of(fm), fm.bearer)[1] == lib.fetch(floor.port, path_of(floor))[1]
        if not same:
            raise RuntimeError(f"the bare app's {what} body differs from fidesmail's")
        lat = interleaved([fm, floor], path_of, profile["rounds"], profile["per_round"])
        rps = interleaved_rps([fm, floor], path_of, profile["rps_rounds"], profile["rps_seconds"])
        out[what] = {name: {"p50": lib.pct(v, 50), "p99": lib.pct(v, 99), "rps": rps[name]}
                     for name, v in lat.items()}
    return out


def edit_served(server: Server, trial: int, timeout: float = 10.0) -> float:
    """Seconds from rewriting one config file in place until 10 fresh connections in a row serve it."""
    key = lib.config_key(max(0, server.tree["count"] // 3))
    index = int(key.split("_")[1])
    doc = lib.config_doc(index)
    doc["name"] = f"Config {index:05d} edited {trial}"
    path = server.tree["config"] / "email" / f"{key}.yaml"
    wanted = f'"name":"{doc["name"]}"'.encode()
    raw = server.raw(ONE_PATH.format(key=key))
    started = time.monotonic()
    with open(path, "wb") as fh:  # as an editor or `git checkout` would: the same path, new content
        fh.write(lib.yamlio.dump(doc))
    streak_start, streak = None, 0
    while time.monotonic() - started < timeout:
        client = lib.RawClient(server.port)
        try:
            status, body = client.request(raw)
        finally:
            client.close()
        if status == 200 and wanted in body:
            if streak == 0:
                streak_start = time.monotonic()
            streak += 1
            if streak >= 10:
                return streak_start - started
        else:
            streak = 0
        time.sleep(0.003)
    return float("inf")


def flask_check(tree: dict) -> tuple[float, str]:
    env = lib.base_env(FIDESMAIL_CONFIG_DIR=tree["config"], FIDESMAIL_INSTANCE_DIR=tree["instance"],
                       FLASK_APP="app")
    started = time.monotonic()
    result = subprocess.run([lib.PY, "-m", "flask", "check"], cwd=lib.ROOT, env=env, capture_output=True,
                            text=True, timeout=FLASK_CHECK_TIMEOUT)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"flask check failed on a good tree: {result.stdout[-500:]} {result.stderr[-500:]}")
    return elapsed, result.stderr.strip().splitlines()[-1]


def idle(servers: list[Server], seconds: float) -> dict[str, dict]:
    """CPU of each process tree over the same idle window, then its memory."""
    time.sleep(min(2.0, seconds))  # let the last requests' threads settle
    for s in servers:
        if s.proc.poll() is not None or not lib.children(s.proc.pid):
            raise RuntimeError(f"{s.name} is not running (exit {s.proc.returncode}) before the idle window")
    before = {s.name: lib.tree_cpu(s.proc.pid) for s in servers}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    out = {}
    for s in servers:
        cpu = (lib.tree_cpu(s.proc.pid) - before[s.name]) / elapsed
        out[s.name] = {"cpu_percent": 100 * cpu, **lib.memory(s.proc.pid)}
    return out


# --- the run ----------------------------------------------------------------------------------

def run(profile: dict, tmp: Path) -> dict:
    bearer = lib.token()
    sizes = profile["sizes"]
    results: dict = {"sizes": sizes, "scale": {n: {} for n in sizes}}
    trees = {}
    for n in sizes:
        started = time.monotonic()
        trees[n] = lib.make_tree(tmp / f"tree-{n}", n)
        note(f"made a tree of {n} configs and {n} sealed secrets in {time.monotonic() - started:.1f} s")

    # The small server and its floor first: the bigger trees' watchers must not run during these.
    small_n = sizes[0]
    servers: dict[int, Server] = {small_n: fidesmail(f"fidesmail-{small_n}", trees[small_n], tmp, bearer)}
    floor = bare(f"bare-{small_n}", trees[small_n], tmp)
    floor_start = {small_n: floor.start_seconds}
    for server in (servers[small_n], floor):
        lib.touch_workers(server.port, server.one_path(), server.bearer)

    note("API latency: fidesmail vs bare Flask")
    lib.CLIENT_CPU.clear()
    results["api"] = api_latency(servers[small_n], floor, profile)
    results["api_client_cpu"] = max(lib.CLIENT_CPU)

    note("send: fidesmail vs a direct post to the test Mailgun")
    results["send"] = send_bench.measure(tmp, profile["send"])

    note("send through each provider: fidesmail vs the same request sent directly to its stand-in")
    results["providers"] = providers_bench.measure(tmp, profile["send"])

    note("message records: GET one record vs GET one config, lists, bytes per record (SQLite, PostgreSQL)")
    results["records"] = records_bench.measure(tmp, profile["records"])

    note("webhook intake vs GET one config (SQLite, PostgreSQL)")
    results["webhooks"] = webhooks_bench.measure_backends(tmp / "webhooks", profile["webhooks"])

    note("webhook intake per provider (SendGrid, Mandrill, SES through SNS) vs GET one config (SQLite)")
    results["provider_events"] = provider_events_bench.measure(tmp / "provider-events", profile["provider_events"])

    note("callbacks: N status changes posted by fidesmail vs N direct posts to the same receiver")
    (tmp / "callbacks").mkdir()
    results["callbacks"] = callbacks_bench.measure(tmp / "callbacks", profile["callbacks"])

    note("outbox: 202 accepts vs GET one config; draining vs direct posts (SQLite, then 3 replicas on PostgreSQL)")
    results["outbox"] = outbox_bench.measure(tmp, profile["outbox"], postgres=True)

    note("limits and evidence: a limited send vs an unlimited one, a 20-record bundle vs its list, a paced drain")
    results["limits"] = limits_bench.measure(tmp, profile["limits"])

    for n in sizes[1:]:  # one at a time, nothing else busy: start-up is measured alone
        probe = bare(f"bare-start-{n}", trees[n], tmp)
        floor_start[n] = probe.start_seconds
        lib.stop(probe.proc)
        servers[n] = fidesmail(f"fidesmail-{n}", trees[n], tmp, bearer)
        lib.touch_workers(servers[n].port, servers[n].one_path(), bearer)
    results["floor_start"] = floor_start
    for n, server in servers.items():
        results["scale"][n]["start"] = server.start_seconds
        note(f"fidesmail on {n} configs: first /health 200 after {server.start_seconds:.2f} s")

    note("scale: GET one and a list page across sizes")
    scale_servers = list(servers.values())
    for what, path_of in (("one", Server.one_path), ("list", lambda s: LIST_PATH)):
        lat = interleaved(scale_servers, path_of, profile["scale_rounds"], profile["scale_per_round"])
        for n, server in servers.items():
            results["scale"][n][what] = lib.pct(lat[server.name], 50)

    for n, server in servers.items():
        trials = [edit_served(server, t) for t in range(profile["edit_trials"])]
        results["scale"][n]["edit"] = max(trials)
        note(f"edit served on {n} configs: {', '.join(f'{t:.2f}' for t in trials)} s")
    for n in sizes:
        elapsed, summary = flask_check(trees[n])
        results["scale"][n]["check"] = elapsed
        note(f"flask check on {n} configs: {elapsed:.2f} s ({summary})")

    note(f"idle: {profile['idle_seconds']:g} s")
    idle_results = idle([*servers.values(), floor], profile["idle_seconds"])
    for n, server in servers.items():
        results["scale"][n].update(idle_results[server.name])
    results["idle_floor"] = idle_results[floor.name]
    results["idle_seconds"] = profile["idle_seconds"]
    for n in sizes:
        results["scale"][n]["stat_floor"] = stat_floor(trees[n]["config"] / "email")
    return results


def stat_floor(folder: Path, tries: int = 5) -> float:
    """Seconds to list a folder and stat every file in it once (best of `tries`): what one poll costs at least."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        for entry in os.scandir(folder):
            entry.stat()
        best = min(best, time.perf_counter() - started)
    return best


# --- the report -------------------------------------------------------------------------------

def ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor else "n/a"


def render(results: dict, machine: dict, mode: str, wall: float) -> str:
    sizes = results["sizes"]
    small, large = sizes[0], sizes[-1]
    api = results["api"]
    parts = [
        "# fidesmail benchmarks",
        "",
        f"`python bench/run.py{'' if mode == 'full' else ' --' + mode}` on {machine['date']}, "
        f"{wall:.0f} s wall time; load average {results['load'][0]:.1f} at the start "
        "(above 0: other work was sharing the cores).",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} cores; memory {machine['memory']}",
        f"- Python {machine['python']} on {machine['platform']}",
        "- gunicorn gthread, WEB_CONCURRENCY=2 workers x FIDESMAIL_THREADS=4, app preloaded (`python app.py`); "
        "clients, servers and the test Mailgun share the same cores",
        "",
        "Ratios are fidesmail's cost over its floor, measured side by side in the same run "
        "(for req/s: floor's rate / fidesmail's rate), so 1.00x means no cost over the floor.",
        "",
        f"## API latency ({small} configs; floor: bare Flask, same JSON, same gunicorn settings)",
        "",
    ]
    rows = []
    goals = {"one": ("GET one config", 1.15), "list": ("list page (size 50)", 1.3)}  # issue 17
    for what, (label, goal) in goals.items():
        fm, fl = api[what][f"fidesmail-{small}"], api[what][f"bare-{small}"]
        rows.append([f"{label}: p50, 1 client", ms(fm["p50"]), ms(fl["p50"]), ratio(fm["p50"], fl["p50"]),
                     f"<= {goal}x", met(fm["p50"] / fl["p50"] <= goal)])
        rows.append([f"{label}: p99, 1 client", ms(fm["p99"]), ms(fl["p99"]), ratio(fm["p99"], fl["p99"]), "", ""])
        rows.append([f"{label}: req/s, 8 clients", f"{fm['rps']:,.0f}/s", f"{fl['rps']:,.0f}/s",
                     ratio(fl["rps"], fm["rps"]), "", ""])
    parts += [table(["measure", "fidesmail", "bare Flask (floor)", "ratio", "goal", "met"], rows), "",
              "Client: prebuilt requests over raw keep-alive sockets (one per client; 8 client processes for req/s); "
              f"the load clients used at most {100 * results['api_client_cpu']:.0f}% of the machine's CPU "
              "in the 8-client runs. fidesmail's figure includes what the floor does not do: token "
              "verification, the JSON request log line, the request id, Prometheus metrics and flask-smorest's "
              "wrappers.", ""]

    parts += ["## Send (test Mailgun on loopback; floor: the same form posted directly with requests.Session)", ""]
    parts += [table(send_bench.SEND_HEADER, send_bench.rows(results["send"])), "", send_bench.NOTE, ""]

    parts += ["## Send through each provider (stand-ins on loopback; floor: the same request sent directly)", ""]
    parts += [table(providers_bench.HEADER, providers_bench.rows(results["providers"])), "", providers_bench.NOTE,
              ""]

    parts += ["## Message records (floor: GET one config on the same server)", ""]
    parts += [table(["measure", "fidesmail", "floor", "ratio", "goal", "met"], records_bench.rows(results["records"])),
              "", records_bench.NOTE, "", *records_bench.breakdown_lines(results["records"]), ""]

    parts += ["## Webhook intake (a signed Mailgun event, verified and written once; floor: GET one config)", ""]
    hook_rows = [row for backend, result in results["webhooks"].items() for row in webhooks_bench.rows(result, backend)]
    parts += [table(webhooks_bench.HEADER, hook_rows), "", webhooks_bench.NOTE, ""]

    parts += ["## Webhook intake per provider (one signed event per post, verified and kept once)", ""]
    parts += [provider_events_bench.table(results["provider_events"]), "", provider_events_bench.NOTE, ""]

    parts += ["## Callbacks (status changes POSTed to the config's receiver, signed)", ""]
    parts += [callbacks_bench.table(results["callbacks"]), ""]

    parts += ["## Outbox (Prefer: respond-async; test Mailgun on loopback)", ""]
    parts += [table(outbox_bench.HEADER, outbox_bench.rows(results["outbox"])), "", outbox_bench.NOTE, ""]

    parts += ["## Limits and evidence (test Mailgun on loopback; floors side by side in the same run)", ""]
    parts += [table(limits_bench.HEADER, limits_bench.rows(results["limits"])), "", limits_bench.NOTE, ""]

    scale = results["scale"]
    parts += [f"## Scale ({', '.join(f'{n:,}' for n in sizes)} configs, as many sealed secrets)", ""]
    header = ["measure", *[f"{n:,} configs" for n in sizes], f"{large:,} vs {small:,}", f"goal at {large:,}",
              "met"]
    fs = results["floor_start"]
    srows = [
        ["start to first /health 200", *[f"{scale[n]['start']:.2f} s" for n in sizes],
         ratio(scale[large]["start"], scale[small]["start"]), "< 3 s", met(scale[large]["start"] < 3)],
        ["floor: bare Flask start (parses the same YAML, no validation)", *[f"{fs[n]:.2f} s" for n in sizes],
         ratio(fs[large], fs[small]), "", ""],
        ["GET one config, p50", *[ms(scale[n]["one"]) for n in sizes], ratio(scale[large]["one"], scale[small]["one"]),
         "<= 1.2x", met(scale[large]["one"] / scale[small]["one"] <= 1.2)],
        ["list page (size 50), p50", *[ms(scale[n]["list"]) for n in sizes],
         ratio(scale[large]["list"], scale[small]["list"]), "<= 1.5x",
         met(scale[large]["list"] / scale[small]["list"] <= 1.5)],
        ["edit on disk until every worker serves it (worst trial)", *[f"{scale[n]['edit']:.2f} s" for n in sizes],
         "", "< 0.5 s", met(scale[large]["edit"] < 0.5)],
        ["`flask check` over the tree", *[f"{scale[n]['check']:.2f} s" for n in sizes],
         ratio(scale[large]["check"], scale[small]["check"]), "< 10 s", met(scale[large]["check"] < 10)],
        ["worker RSS (largest worker)", *[f"{scale[n]['worker_rss']:.1f} MB" for n in sizes],
         ratio(scale[large]["worker_rss"], scale[small]["worker_rss"]), "", ""],
        ["worker PSS (largest worker; its share of pages shared with the master)",
         *[f"{scale[n]['worker_pss']:.1f} MB" for n in sizes],
         ratio(scale[large]["worker_pss"], scale[small]["worker_pss"]), "< 40 MB",
         met(scale[large]["worker_pss"] < 40)],
        [f"idle CPU over {results['idle_seconds']:g} s, whole process tree",
         *[f"{scale[n]['cpu_percent']:.2f}% of a core" for n in sizes], "", "< 0.5%",
         met(scale[large]["cpu_percent"] < 0.5)],
        ["floor: one stat() of every config file per second (any 1-s polling)",
         *[f"{100 * scale[n]['stat_floor']:.2f}% of a core" for n in sizes], "", "", ""],
    ]
    parts += [table(header, srows), "",
              "Edits are found by one inotify watcher per service (on the tree's folders, its root included), "
              "with a full look every 30 s besides, passed over by a stat digest when nothing changed; the stat "
              "floor above is what the earlier once-a-second poll cost. Memory is measured after the edit "
              "trials: the worker that installs an edit also writes last-good.json, which touches (and so "
              "copies) every document it shares with the master.", ""]

    fl, sm = results["idle_floor"], scale[small]
    parts += [f"## Idle ({small} configs, after the load above; floor: the bare Flask app, idle alike)", ""]
    irows = [
        ["RSS per worker (largest)", f"{sm['worker_rss']:.1f} MB", f"{fl['worker_rss']:.1f} MB",
         ratio(sm["worker_rss"], fl["worker_rss"]), "< 60 MB", met(sm["worker_rss"] < 60)],
        ["RSS of the process tree (master + workers, shared pages counted in each)", f"{sm['tree_rss']:.1f} MB",
         f"{fl['tree_rss']:.1f} MB", ratio(sm["tree_rss"], fl["tree_rss"]), "", ""],
        ["PSS of the process tree (what the tree really costs)", f"{sm['tree_pss']:.1f} MB",
         f"{fl['tree_pss']:.1f} MB", ratio(sm["tree_pss"], fl["tree_pss"]), "", ""],
        [f"CPU while idle over {results['idle_seconds']:g} s", f"{sm['cpu_percent']:.2f}% of a core",
         f"{fl['cpu_percent']:.2f}% of a core", "", "< 1%", met(sm["cpu_percent"] < 1)],
    ]
    if large != small:
        lg = scale[large]
        irows += [
            [f"RSS per worker at {large:,} configs", f"{lg['worker_rss']:.1f} MB", "", "", "< 60 MB",
             met(lg["worker_rss"] < 60)],
            [f"CPU while idle at {large:,} configs", f"{lg['cpu_percent']:.2f}% of a core", "", "", "< 1%",
             met(lg["cpu_percent"] < 1)],
        ]
    parts += [table(["measure", "fidesmail", "bare Flask (floor)", "ratio", "goal", "met"], irows), ""]
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode_group = parser.add_mutually_exclusive_group()
    mode_group.add_argument("--quick", action="store_true", help="fewer requests, 5 s idle window (~2 min)")
    mode_group.add_argument("--smoke", action="store_true", help="10 configs, a few requests (checks it runs)")
    parser.add_argument("--out", type=Path, help="where to write the report (default bench/RESULTS.md; "
                                                 "--smoke writes nowhere unless given)")
    parser.add_argument("--compare", metavar="BASE", help="instead: the hot paths of this checkout beside git "
                                                          "revision BASE, in one run, with their ratio")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.compare:
        return compare.main([args.compare, *([f"--{mode}"] if mode != "full" else [])])
    out = args.out or (None if args.smoke else lib.ROOT / "bench" / "RESULTS.md")
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fidesmail-bench-") as tmp:
        try:
            results = run(PROFILES[mode], Path(tmp))
            results["load"] = (load_before, os.getloadavg()[0])
        except BaseException:
            logs = sorted(Path(tmp).glob("*.log"))
            for log in logs:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print(f"--- {log.name} (last lines)\n" + "\n".join(tail), file=sys.stderr)
            raise
        finally:
            lib.stop_all()
    report = render(results, lib.machine(), mode, time.monotonic() - started)
    print(report)
    if out is not None:
        out.write_text(report + "\n")
        note(f"wrote {os.path.relpath(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
