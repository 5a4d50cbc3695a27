"""``POST /api/tasks/ping`` through gunicorn: requests per second, and where a request's time goes.

Run: ``.venv/bin/python -m bench.web_ping [--requests 6000] [--clients 8] [--client raw] [--profile]``. One Redis
of our own and the web app under ``gunicorn -c gunicorn.conf.py`` (gthread; ``WEB_WORKERS`` x
``WEB_THREADS`` from the environment, 2 x 8 by default), development settings, no worker (the
tasks stay queued: this measures the web side). Client processes (not threads: one Python
process cannot drive the server hard enough) each keep one HTTP/1.1 connection and post in a
loop. Prints requests/s as medians (min-max) of ``--repeats`` runs; every answer must be 202.
The clients run on the same cores as the server, so their CPU per request is printed too;
``--client raw`` sends the same requests for about a third of http.client's client CPU (~100 us,
most of it the socket calls).

``--profile`` instead runs the same request in this process through Flask's test client under
cProfile and prints the top functions by own time: the server-side cost per request without
gunicorn or the network. Target (issue 19): at least 1,500 requests/s on the project's 2 cores.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import multiprocessing
import os
import pstats
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

from bench.compat_overhead import commands_processed, median_range, run_on_own_redis, stop_processes
from bench.load_test import _wait_http

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PATH = "/api/tasks/ping"
HEADERS = {"Content-Type": "application/json"}


def _post_loop(port: int, count: int, client: int, start, results, raw: bool = False) -> None:
    """One client process: ``count`` POSTs on one kept connection; reports (refused, seconds, CPU seconds)."""
    bodies = [json.dumps({"token": f"bench:{client}:{i}"}) for i in range(count)]
    if raw:
        connection = RawConnection(port)
        requests = [connection.request_bytes(body) for body in bodies]
        post = connection.post
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def post(payload: str) -> int:
            connection.request("POST", PATH, payload, HEADERS)
            response = connection.getresponse()
            response.read()
            return response.status

        requests = bodies
    refused = 0
    start.wait()
    started, cpu = time.perf_counter(), time.process_time()
    for request in requests:
        refused += post(request) != 202
    results.put((refused, time.perf_counter() - started, time.process_time() - cpu))


class RawConnection:
    """``--client raw``: the same POSTs on one kept socket, built in advance, reading of each answer only
    its status and Content-Length. http.client parses every header through email.parser: ~290 against
    ~100 us of client CPU per request, on the 2 cores the server needs (a real client runs elsewhere)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def request_bytes(self, body: str) -> bytes:
        data = body.encode()
        return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode() + data

    def post(self, request: bytes) -> int:
        """Send one request, read its whole answer, return its status."""
        if self.sock is None:
            self.sock, self.buffer = socket.create_connection(("127.0.0.1", self.port), timeout=30), b""
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        fields = {name.strip().lower(): value.strip().lower()
                  for name, _, value in (line.partition(b":") for line in lines[1:])}
        if b"transfer-encoding" in fields:
            raise RuntimeError(f"a chunked answer: {head!r}")
        self.buffer, length = rest, int(fields.get(b"content-length", b"0"))
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]
        if fields.get(b"connection") == b"close":
            self.sock.close()
            self.sock = None
        return int(lines[0].split(b" ", 2)[1])

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection in the middle of an answer")
        self.buffer += chunk


def measure(port: int, requests: int, clients: int, raw: bool = False) -> tuple[float, int, float]:
    """Requests per second of ``clients`` processes sharing ``requests`` POSTs, how many were refused,
    and the clients' CPU seconds (they share the server's cores)."""
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_post_loop, args=(port, requests // clients, i, start, results, raw))
               for i in range(clients)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # every client has connected and built its bodies
    started = time.perf_counter()
    start.set()
    outcomes = [results.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    return (requests // clients * clients / elapsed, sum(refused for refused, _, _ in outcomes),
            sum(cpu for _, _, cpu in outcomes))


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for child in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _children(pid: int) -> list[int]:
    try:
        found = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [grandchild for child in found for grandchild in (child, *_children(child))]


def redis_cpu_seconds(conn: redis.Redis) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def run_gunicorn(server, options: argparse.Namespace) -> None:
    from app.embedded_redis import free_port

    port = free_port()
    env = {**os.environ, "REDIS_URL": server.url, "PYTHONPATH": str(ROOT), "APP_ENV": "development"}
    command = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        _wait_http(port, time.monotonic() + 60)
        raw = options.client == "raw"
        measure(port, options.clients * 50, options.clients, raw)  # warm every worker and thread
        conn = redis.Redis.from_url(server.url)
        rates, refused, web_cpu, redis_cpu, client_cpu, commands = [], 0, [], [], [], []
        for _ in range(options.repeats):
            web, store, sent = tree_cpu_seconds(process.pid), redis_cpu_seconds(conn), commands_processed(conn)
            rate, failed, clients_cpu = measure(port, options.requests, options.clients, raw)
            rates.append(rate)
            refused += failed
            done = options.requests // options.clients * options.clients
            web_cpu.append((tree_cpu_seconds(process.pid) - web) / done * 1e6)
            redis_cpu.append((redis_cpu_seconds(conn) - store) / done * 1e6)
            client_cpu.append(clients_cpu / done * 1e6)
            commands.append((commands_processed(conn) - sent) / done)
        print(f"POST {PATH}, gunicorn -c gunicorn.conf.py ({env.get('WEB_WORKERS', 2)} workers x "
              f"{env.get('WEB_THREADS', 8)} threads), {options.clients} client processes ({options.client}), "
              f"{options.requests} "
              f"requests: {median_range(rates)} requests/s, medians (min-max) of {options.repeats}; "
              f"refused {refused}")
        # CPU per request is what the rate becomes on an idle machine: 2 cores / (web + Redis + client).
        print(f"  gunicorn CPU {median_range(web_cpu)} us/request, Redis CPU {median_range(redis_cpu)} us/request, "
              f"client CPU {median_range(client_cpu)} us/request, "
              f"{statistics.median(commands):.1f} Redis cmds/request (Lua-internal included)")
        print(json.dumps({"web_ping_per_s": rates, "refused": refused, "web_cpu_us": web_cpu,
                          "redis_cpu_us": redis_cpu, "client_cpu_us": client_cpu, "commands": commands}))
    finally:
        stop_processes([process])


def run_profile(server, options: argparse.Namespace) -> None:
    from app import create_app

    client = create_app({"REDIS_URL": server.url}).test_client()

    def post(count: int) -> None:
        for i in range(count):
            response = client.post(PATH, json={"token": f"profile:{i}"})
            assert response.status_code == 202, response.data

    post(50)
    # Batches, and their minimum beside the median: on a shared machine the least disturbed batch
    # is the closest to the code's own cost.
    batch = max(1, options.requests // 5)
    walls, cpus = [], []
    for _ in range(5):
        started, cpu = time.perf_counter(), time.process_time()
        post(batch)
        walls.append((time.perf_counter() - started) / batch * 1e6)
        cpus.append((time.process_time() - cpu) / batch * 1e6)
    print(f"in-process (Flask test client), 5 x {batch} requests: {median_range(walls)} us wall, "
          f"{median_range(cpus)} us CPU per request, medians (min-max)")
    profiler = cProfile.Profile()
    profiler.runcall(post, options.requests)
    pstats.Stats(profiler).sort_stats(options.sort).print_stats(options.top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--client", choices=("http.client", "raw"), default="http.client",
                        help="raw: prebuilt requests on a socket, about a third of http.client's CPU per request")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="pstats order for --profile: tottime, cumulative")
    parser.add_argument("--top", type=int, default=30)
    options = parser.parse_args(argv)
    run_on_own_redis(run_profile if options.profile else run_gunicorn, options)


if __name__ == "__main__":
    main()
