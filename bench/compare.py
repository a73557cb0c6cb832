"""A change's cost before it lands: the same requests against this checkout and another git revision.

`python bench/compare.py BASE [--quick]` (also `python bench/run.py --compare BASE`) checks BASE out
into a temporary worktree, starts `python app.py` from each checkout on copies of one config tree
(with the same keys), and measures GET one config, a list page and a send to the test Mailgun at 1
client, the two servers taking turns round by round so that noise hits both alike (and each server's CPU
time per request over those rounds, which waiting for a CPU does not inflate), then each one's throughput
with 8 clients. It prints each figure and the ratio this checkout / BASE: 1.00x means the
change costs nothing.

`--base-env NAME=VALUE` (repeatable) starts BASE with other settings: `python bench/compare.py HEAD
--base-env WEB_CONCURRENCY=1 --base-env FIDESMAIL_THREADS=8` puts today's pre-forked workers beside one
process serving with threads, on the same code.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402
import send as send_bench  # noqa: E402
from send import ms, table  # noqa: E402

PROFILES = {
    "full": {"rounds": 6, "per_round": 500, "seconds": 5},
    "quick": {"rounds": 3, "per_round": 200, "seconds": 3},
    "smoke": {"rounds": 1, "per_round": 20, "seconds": 0.5},
}


def checkout(revision: str, where: Path) -> Path:
    """A detached worktree of `revision` at `where` (removed by `remove_checkout`)."""
    subprocess.run(["git", "-C", str(lib.ROOT), "worktree", "add", "--detach", str(where), revision],
                   check=True, capture_output=True, text=True)
    return where


def remove_checkout(where: Path) -> None:
    subprocess.run(["git", "-C", str(lib.ROOT), "worktree", "remove", "--force", str(where)], capture_output=True)


def _server(name: str, code: Path, tree: dict, tmp: Path, fake_url: str, extra_env: dict):
    port = lib.free_port()
    env = lib.server_env(tree, port, FIDESMAIL_MAILGUN_BASE_URL=fake_url, FIDESMAIL_MAILGUN_RETRIES=0)
    env.update(extra_env)
    proc, _ = lib.start_server([lib.PY, str(code / "app.py")], env, tmp / f"{name}.log", port)
    return proc, port


def measure(base: str, tmp: Path, profile: dict, base_env: dict | None = None) -> list[list[str]]:
    tmp = Path(tmp)
    base_code = checkout(base, tmp / "base-checkout")
    fake_port = lib.free_port()
    fake = lib.spawn([lib.PY, str(lib.ROOT / "tests" / "mailgun_fake.py"), "--port", str(fake_port),
                      "--domain", f"{send_bench.DOMAIN}={send_bench.API_KEY}"], lib.base_env(), tmp / "fake.log")
    procs = []
    try:
        lib.wait_port(fake_port, fake)
        fake_url = f"http://{lib.HOST}:{fake_port}"
        tree = lib.make_tree(tmp / "tree-head", 10, domain=send_bench.DOMAIN, api_key=send_bench.API_KEY)
        base_tree = {**tree, "config": tmp / "tree-base" / "config", "instance": tmp / "tree-base" / "instance"}
        shutil.copytree(tree["config"], base_tree["config"])
        shutil.copytree(tree["instance"], base_tree["instance"])
        servers, pids = {}, {}
        for name, code, its_tree, env in (("this checkout", lib.ROOT, tree, {}),
                                           (base, base_code, base_tree, base_env or {})):
            proc, port = _server(name.replace(" ", "-"), code, its_tree, tmp, fake_url, env)
            procs.append(proc)
            servers[name], pids[name] = port, proc.pid
        bearer = lib.token()
        paths = {"GET one config": f"/api/v1/email/config/{lib.config_key(0)}",
                 "list page (size 50)": "/api/v1/email/config?page=1&size=50"}
        calls = {}
        for name, port in servers.items():
            lib.touch_workers(port, paths["GET one config"], bearer)
            for what, path in paths.items():
                calls[(name, what)] = lib.checked(lib.RawClient(port), lib.get_request(port, path, bearer))
            raw = send_bench.raw_send(port, bearer, send_bench.SEND_BODY | {"config_key": lib.config_key(0)})
            calls[(name, "send (sync, to the test Mailgun)")] = lib.checked(lib.RawClient(port), raw)
        samples = {key: [] for key in calls}
        cpu = {key: [] for key in calls}  # each round's server CPU per request, in us
        for _ in range(profile["rounds"]):
            for key, call in calls.items():
                before = lib.cpu_ns(pids[key[0]])
                samples[key].extend(lib.latencies(call, profile["per_round"], warmup=20))
                after = lib.cpu_ns(pids[key[0]])
                if before is not None and after is not None:
                    cpu[key].append((after - before) / (profile["per_round"] + 20) / 1000)
        rows = []
        for what in dict.fromkeys(what for _, what in calls):
            head, old = lib.pct(samples[("this checkout", what)], 50), lib.pct(samples[(base, what)], 50)
            rows.append([f"{what}, p50", ms(head), ms(old), f"{head / old:.2f}x"])
            if cpu[("this checkout", what)] and cpu[(base, what)]:
                head, old = lib.pct(cpu[("this checkout", what)], 50), lib.pct(cpu[(base, what)], 50)
                rows.append([f"{what}, server CPU per request (median round)", f"{head:,.0f} us", f"{old:,.0f} us",
                             f"{head / old:.2f}x"])
        for what, path_of in (("GET one config", lambda port: lib.get_request(port, paths["GET one config"], bearer)),
                              ("send (sync, to the test Mailgun)", lambda port: send_bench.raw_send(
                                  port, bearer, send_bench.SEND_BODY | {"config_key": lib.config_key(0)}))):
            rates = {name: lib.throughput(_client(port, path_of(port)), 8, profile["seconds"])
                     for name, port in servers.items()}
            head, old = rates["this checkout"], rates[base]
            rows.append([f"{what}, 8 clients, /s", f"{head:,.0f}", f"{old:,.0f}", f"{head / old:.2f}x"])
        return rows
    finally:
        for proc in procs:
            lib.stop(proc)
        lib.stop(fake)
        remove_checkout(base_code)


def _client(port: int, raw: bytes):
    """A factory for lib.throughput: each client process its own connection, checked for a 200."""
    return lambda: lib.checked(lib.RawClient(port), raw)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the git revision to compare with (a commit, branch or tag)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--smoke", action="store_true")
    parser.add_argument("--base-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for BASE's server only (repeatable)")
    args = parser.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    base_env = dict(item.split("=", 1) for item in args.base_env)
    with tempfile.TemporaryDirectory(prefix="fidesmail-compare-") as tmp:
        try:
            rows = measure(args.base, Path(tmp), profile, base_env)
        finally:
            lib.stop_all()
    label = args.base + "".join(f" {item}" for item in args.base_env)
    print(table(["measure", "this checkout", label, "this / base"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
