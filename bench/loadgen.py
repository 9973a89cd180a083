"""The load generator: `wrk`, a C program, driven by Lua scripts written here.

A load generator in Python costs about as much CPU per request as the server it measures, and
on a machine with few cores the two fight for them; wrk costs a few microseconds a request.
When wrk is missing, it is installed from Debian's packages (`apt-get install -y wrk`) if this
process may do so; otherwise the HTTP benchmarks cannot run and the run says why.

Each script keeps its own tally in Lua: an answer whose status is not the expected one is a
failed request, as are wrk's socket errors and timeouts. `done()` prints one JSON line that
`run_wrk` reads back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import Load
from network import GRAND_TOTAL, LINES, NEW_CUSTOMER_SHARE, SHIPPING, TAX, UNIT_PRICE, Network

#: A request not answered within this long is a failed request.
TIMEOUT_SECONDS = 10
#: A pause before each load, for the server to finish what the load before left.
SETTLE_SECONDS = 1.0
RESULT_MARK = "WRK-RESULT "


@dataclass
class WrkRun:
    connections: int
    seconds: float
    #: Answers with the expected status.
    ok: int
    #: Answers with another status, plus socket errors and timeouts.
    failed: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)
    first_failure: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def as_load(self) -> Load:
        return Load("wrk", self.connections, self.seconds, self.ok, self.failed, self.p50_ms,
                    self.p99_ms)


class LoadGeneratorMissing(RuntimeError):
    pass


def wrk_path(say: Callable[[str], None] = print) -> str:
    """wrk's path, installing Debian's package first when it is missing and we may."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        say("wrk is not installed: apt-get install -y wrk")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        finished = subprocess.run([apt, "install", "-y", "wrk"], env=env, capture_output=True,
                                  text=True, timeout=600, check=False)
        found = shutil.which("wrk")
        if found:
            return found
        raise LoadGeneratorMissing(f"apt-get install -y wrk failed: {finished.stderr[-500:]}")
    raise LoadGeneratorMissing("wrk is not installed (Debian/Ubuntu: apt-get install wrk; "
                               "macOS: brew install wrk)")


def wrk_version(path: str) -> str:
    finished = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    first = (finished.stdout or finished.stderr).splitlines()[:1]
    found = re.search(r"wrk\s+(\S+)", first[0]) if first else None
    return found.group(1) if found else "unknown version"


def run_wrk(wrk: str, url: str, script: Path, connections: int, seconds: int, threads: int,
            log_path: Path) -> WrkRun:
    # What the load before left in the server's hands (wrk stops on time, the server finishes
    # the requests it had) is done before this one is timed: 32 requests still in flight
    # would otherwise be the p99 of a load of 4 connections.
    time.sleep(SETTLE_SECONDS)
    threads = max(1, min(threads, connections))
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", f"{TIMEOUT_SECONDS}s", "-s", str(script), url]
    finished = subprocess.run(command, capture_output=True, text=True,
                              timeout=seconds + TIMEOUT_SECONDS + 60, check=False)
    log_path.write_text(finished.stdout + finished.stderr)
    line = next((x for x in finished.stdout.splitlines() if x.startswith(RESULT_MARK)), None)
    if finished.returncode != 0 or line is None:
        raise RuntimeError(f"wrk exited with {finished.returncode}: "
                           f"{(finished.stderr or finished.stdout)[-800:]}")
    data = json.loads(line[len(RESULT_MARK):])
    errors = {k: int(v) for k, v in data["errors"].items() if v}
    socket_errors = sum(v for k, v in errors.items() if k != "status")
    failures = int(data["failures"])
    return WrkRun(
        connections=connections, seconds=data["duration_us"] / 1e6,
        ok=int(data["requests"]) - failures, failed=failures + socket_errors,
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000, errors=errors,
        first_failure=data["first_failure"] or (
            f"no answer within {TIMEOUT_SECONDS} s" if errors.get("timeout") else ""))


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII is a valid Lua string literal


def _lua_list(values: list[str]) -> str:
    return "{" + ", ".join(values) + "}"


# The tally every script shares: setup() gives each thread its number and keeps it for done().
_TALLY = r"""
local threads = {}
tid = 0
failures = 0
first_failure = ""

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local function clean(text)
  return (string.sub(text or "", 1, 300):gsub("[^%w%s%.,:;/_%-%(%)%[%]{}=<>']", " "))
end

function response(status, headers, body)
  if status ~= EXPECTED then
    failures = failures + 1
    if first_failure == "" then first_failure = status .. " " .. clean(body) end
  end
end

function done(summary, latency, requests)
  local failed, first = 0, ""
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
    local f = thread:get("first_failure")
    if first == "" and f ~= "" then first = f end
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"duration_us": %d, "requests": %d, "failures": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}, "first_failure": "%s"}\n',
    RESULT_MARK, summary.duration, summary.requests, failed, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, e.connect, e.read, e.write,
    e.status, e.timeout, first))
end
"""


def _header(expected: int, key: str) -> str:
    return (f"EXPECTED = {expected}\nRESULT_MARK = {_lua_string(RESULT_MARK)}\n"
            f"wrk.headers[\"Authorization\"] = {_lua_string('Bearer ' + key)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n' + _TALLY)


def order_script(path: Path, network: Network, key: str, run_label: str) -> Path:
    """POST /v1/orders: every request a new order (external id `<run>-<thread>-<n>`, placed
    now) of 3 different random skus, from a returning customer 90% of the time, shipped to
    the customer's address."""
    customers = [f"{{{_lua_string(c.email)}, {c.lat}, {c.lon}}}" for c in network.customers]
    new_addresses = [f"{{{lat}, {lon}}}" for lat, lon in network.new_addresses]
    lua = _header(201, key) + f"""
local skus = {_lua_list([_lua_string(s) for s in network.skus])}
local customers = {_lua_list(customers)}
local new_addresses = {_lua_list(new_addresses)}
local run_label = {_lua_string(run_label)}
local lines = {LINES}
local new_share = {NEW_CUSTOMER_SHARE}
local counter = 0

function init(args)
  math.randomseed(tid * 7919)
end

function request()
  counter = counter + 1
  local external_id = run_label .. "-" .. tid .. "-" .. counter
  local email, lat, lon
  if math.random() < new_share then
    email = "new-" .. string.lower(external_id) .. "@example.com"
    local a = new_addresses[math.random(#new_addresses)]
    lat, lon = a[1], a[2]
  else
    local c = customers[math.random(#customers)]
    email, lat, lon = c[1], c[2], c[3]
  end
  local chosen, items = {{}}, {{}}
  while #items < lines do
    local sku = skus[math.random(#skus)]
    if not chosen[sku] then
      chosen[sku] = true
      table.insert(items, '{{"sku":"' .. sku .. '","quantity":1,"unit_price":"{UNIT_PRICE}",' ..
                          '"tax":"{TAX}"}}')
    end
  end
  local body = '{{"channel":"web","external_id":"' .. external_id .. '","placed_at":"' ..
    os.date("!%Y-%m-%dT%H:%M:%SZ") .. '","currency":"EUR","customer":{{"email":"' .. email ..
    '"}},"items":[' .. table.concat(items, ",") .. '],"shipping":{{"option":' ..
    '{{"service_level":"standard","carrier":"dhl","price":"{SHIPPING}"}},"address":' ..
    '{{"line1":"Hauptstrasse 1","city":"Somewhere","postal_code":"10117","country":"DE",' ..
    '"lat":' .. lat .. ',"lon":' .. lon .. '}}}},"payments":[{{"method":"card",' ..
    '"amount":"{GRAND_TOTAL}","status":"authorized"}}],"totals":{{"grand_total":' ..
    '"{GRAND_TOTAL}"}}}}'
  return wrk.format("POST", "/v1/orders", nil, body)
end
"""
    path.write_text(lua)
    return path


def availability_script(path: Path, skus: list[str], key: str) -> Path:
    """GET /v1/availability?sku=<one random sku>: what a product page asks, every location's
    levels of the sku."""
    lua = _header(200, key) + f"""
local skus = {_lua_list([_lua_string(s) for s in skus])}

function init(args)
  math.randomseed(tid * 104729)
end

function request()
  return wrk.format("GET", "/v1/availability?sku=" .. skus[math.random(#skus)])
end
"""
    path.write_text(lua)
    return path
