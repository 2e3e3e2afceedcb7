"""Registry throughput: RPC and bulk import against raw PostgreSQL inserts.

    .venv/bin/python bench/registry.py [--profile]

Everything runs on a private vhost and throwaway schemas (``bench.common``):

1. RPC, against a real registry service process (``python -m zhuqi.runtime.host
   registry``, as deployed: its outbox relay publishes every event meanwhile):
   10,000 volunteers and 5,000 enterprises in batches of 500 through
   ``register_volunteers`` / ``register_enterprises``; then, once the relay
   has published the batches' events, single ``register_volunteer`` calls,
   1,000 from one client one after another and 2,000 from 4 concurrent client
   processes. ``rpc_per_s`` is the per-record
   rate of those concurrent single calls (what forms and unit systems do);
   the other rates are reported next to it.
2. Bulk import, the code path of ``zhuqi registry import``
   (``services.registry.imports``): a generated CSV of 10,000 volunteers and
   one of 5,000 enterprises, each in one transaction, into the same registry
   (already holding the RPC registrations), with the service stopped so the
   timing is the import's own; then the idempotent re-import of the
   volunteers file. ``--profile`` prints the import's cProfile top 30.
3. Raw PostgreSQL: ``executemany`` INSERT of 10,000 rows of the width one
   imported volunteer stores, in one transaction, into a throwaway table.

Human-readable figures go to stderr; the last line on stdout is JSON with
import_10k_volunteers_s, import_per_s, rpc_per_s, raw_insert_per_s and extras.
"""
from __future__ import annotations

import cProfile
import csv
import io
import json
import multiprocessing
import os
import pstats
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bench.common import sandbox  # noqa: E402
from services.registry import bootstrap, imports, templates  # noqa: E402
from services.registry.domain import credit_code  # noqa: E402
from services.registry.domain.units import UNITS  # noqa: E402
from zhuqi.runtime import rpc  # noqa: E402

VOLUNTEERS = 10_000
ENTERPRISES = 5_000
BATCH = 500
SINGLE_SEQUENTIAL = 1_000
SINGLE_CONCURRENT = 2_000
CLIENTS = 4
FORK = multiprocessing.get_context("fork")

# Realistic variety: units, tags, industries, honours as the campaign uses them.
UNIT_CODES = [u.code for u in UNITS]
UNIT_NAMES = [u.name for u in UNITS]
TAG_SETS = [["welding", "process_improvement"], ["cnc_machining", "integrated_circuits", "quality_control"],
            ["electrical_maintenance"], ["biomedicine", "inspection_testing"], ["software", "data_analysis",
            "artificial_intelligence", "technology_transfer"], ["high_end_textiles", "lean_management"]]
TAG_CELLS = ["焊接;工艺改进", "数控加工;集成电路;质量控制", "电气维修", "生物医药;检验检测",
             "软件开发;数据分析;人工智能;成果转化", "高端纺织;精益管理"]
HONOURS = [[{"kind": "model_worker", "level": "city"}],
           [{"kind": "craftsman", "level": "district", "title": "姑苏工匠"}, {"kind": "may_day_medal", "level": "province"}],
           [{"kind": "first_completer", "level": "national"}]]
HONOUR_CELLS = ["劳模:市级", "工匠:区级:姑苏工匠;五一劳动奖章:省级", "第一完成人:国家级"]
INDUSTRIES = ["C34", "C39", "C17", "C27", "C38", "I65"]


class Phones:
    """Distinct mobile numbers across every phase of one run."""

    def __init__(self, seed: int = 11):
        self._numbers = iter(random.Random(seed).sample(range(10**9), 40_000))

    def next(self) -> str:
        return f"13{next(self._numbers):09d}"


def volunteer_payload(i: int, phone: str) -> dict:
    return {"unit": UNIT_CODES[i % 45], "name": f"志愿者{i:05d}", "gender": "男" if i % 3 else "女",
            "employer": f"苏州某精密机械有限公司第{i % 97}分厂", "post": "车间主任", "political_status": "中共党员",
            "education": "大专", "skill_grade": "高级技师", "honours": HONOURS[i % 3], "phone": phone,
            "expertise": TAG_SETS[i % 6], "employer_industry": INDUSTRIES[i % 6]}


def credit(i: int, series: int) -> str:
    # Division code 320500 (Suzhou), then an 8-character body unique per (series, i);
    # both check characters come from the registry's own functions.
    return credit_code.complete(f"91320500{series}{i:07d}")


def enterprise_payload(i: int, series: int) -> dict:
    return {"unit": UNIT_CODES[i % 45], "name": f"苏州某智能装备有限公司{series}-{i:05d}",
            "credit_code": credit(i, series), "industry": INDUSTRIES[i % 6],
            "size": ("large", "medium", "small", "micro")[i % 4], "little_giant": i % 7 == 0,
            "unionised": i % 2 == 0}


def volunteers_csv(n: int, phones: Phones) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(list(templates.VOLUNTEER_COLUMNS))
    for i in range(n):
        # Column order of VOLUNTEER_COLUMNS: 姓名 性别 工作单位 职务 政治面貌 文化程度 技能等级 荣誉
        # 联系电话 身份证号 专长 所属行业 归口单位.
        writer.writerow([f"导入志愿者{i:05d}", "男" if i % 3 else "女", f"苏州某精密机械有限公司第{i % 97}分厂",
                         "车间主任", "中共党员", "大专", "高级技师", HONOUR_CELLS[i % 3], phones.next(), "",
                         TAG_CELLS[i % 6], INDUSTRIES[i % 6], UNIT_NAMES[i % 45]])
    return buffer.getvalue().encode("utf-8-sig")


def enterprises_csv(n: int, series: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(list(templates.ENTERPRISE_COLUMNS))
    sizes = ("大型", "中型", "小型", "微型")
    for i in range(n):
        # 企业名称 统一社会信用代码 所属行业 企业规模 专精特新小巨人 是否建会 归口单位 竞争企业; every
        # tenth names the previous enterprise of its industry as a competitor (same file).
        competitor = credit(i - 6, series) if i % 10 == 9 else ""
        writer.writerow([f"苏州某智能装备有限公司{series}-{i:05d}", credit(i, series), INDUSTRIES[i % 6],
                         sizes[i % 4], "是" if i % 7 == 0 else "否", "是" if i % 2 == 0 else "否",
                         UNIT_NAMES[i % 45], competitor])
    return buffer.getvalue().encode("utf-8-sig")


# -- the service process -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(config, schemas: dict, port: int) -> dict:
    env = dict(os.environ)
    env.update({
        "ZHUQI_AMQP_URI": config.amqp_uri, "ZHUQI_POSTGRES_DSN": config.postgres_dsn,
        "ZHUQI_SECRETS__DIR": str(config.secrets_dir), "ZHUQI_LOG__LEVEL": "WARNING",
        "ZHUQI_SERVICES__REGISTRY__SCHEMA": schemas["registry"], "ZHUQI_SERVICES__LEDGER__SCHEMA": schemas["ledger"],
        "ZHUQI_SERVICES__REGISTRY__HTTP_PORT": str(port), "ZHUQI_SERVICES__LEDGER__HTTP_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def start_service(env: dict, port: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "zhuqi.runtime.host", "registry"], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"registry did not become healthy:\n{log_path.read_text()[-3000:]}")


def wait_for_relay(config, schema: str, port: int, timeout: float = 300.0) -> float:
    """Wait until the service's outbox relay has published every stored event.

    The batches store 30,000 events at once; measuring single calls while the
    relay is still publishing that backlog would charge them for it.
    """
    query = sql.SQL("SELECT COALESCE(MAX(notification_id), 0) FROM {}").format(
        sql.Identifier(schema, "registry_events"))
    with psycopg.connect(config.postgres_dsn, autocommit=True) as conn:
        stored = conn.execute(query).fetchone()[0]
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            if json.load(response)["outbox"]["position"] >= stored:
                return time.perf_counter() - started
        time.sleep(0.2)
    raise RuntimeError(f"the outbox relay did not catch up with {stored} events in {timeout} s")


def stop_service(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# -- RPC -----------------------------------------------------------------------------


def rpc_batches(config, method: str, payloads: list[dict]) -> float:
    with rpc.cluster(config, timeout=120) as client:
        service = client.registry
        started = time.perf_counter()
        for start in range(0, len(payloads), BATCH):
            result = getattr(service, method)(payloads[start:start + BATCH])
            assert len(result["created"]) == len(payloads[start:start + BATCH]), result["unchanged"]
        return time.perf_counter() - started


def rpc_singles(config, payloads: list[dict]) -> float:
    with rpc.cluster(config) as client:
        started = time.perf_counter()
        for payload in payloads:
            client.registry.register_volunteer(payload)
        return time.perf_counter() - started


def rpc_singles_concurrent(config, payloads: list[dict], clients: int) -> float:
    """Wall time for `clients` processes, each with its own connection, to register their share."""
    ready, go = FORK.Barrier(clients + 1), FORK.Event()

    def client(share: list[dict]) -> None:
        with rpc.cluster(config) as cluster:
            service = cluster.registry
            service.list_units()  # connection and reply queue set up before the clock starts
            ready.wait()
            go.wait()
            for payload in share:
                service.register_volunteer(payload)

    procs = [FORK.Process(target=client, args=(payloads[k::clients],)) for k in range(clients)]
    for p in procs:
        p.start()
    ready.wait()
    started = time.perf_counter()
    go.set()
    for p in procs:
        p.join(600)
        if p.exitcode != 0:
            raise RuntimeError(f"an RPC client failed with exit code {p.exitcode}")
    return time.perf_counter() - started


# -- raw PostgreSQL ---------------------------------------------------------------------


def stored_width(config, schema: str) -> dict:
    """Bytes one imported volunteer stores: its events, directory rows and key row."""
    query = sql.SQL(
        "SELECT (SELECT avg(octet_length(state)) FROM {events} WHERE topic LIKE %s),"
        " (SELECT avg(octet_length(summary::text)) FROM {directory} WHERE kind = 'volunteer'),"
        " (SELECT avg(octet_length(sealed)) FROM {directory} WHERE kind = 'volunteer'),"
        " (SELECT avg(octet_length(state)) FROM {events} WHERE topic LIKE %s)").format(
        events=sql.Identifier(schema, "registry_events"), directory=sql.Identifier(schema, "directory"))
    with psycopg.connect(config.postgres_dsn) as conn:
        event, summary, sealed, reservation = conn.execute(
            query, ("%Volunteer.Registered", "%Reservation.Reserved")).fetchone()
    return {"event": int(event), "summary": int(summary), "sealed": int(sealed), "reservation": int(reservation)}


def raw_insert(config, schema: str, width: dict, n: int = VOLUNTEERS) -> float:
    """executemany INSERT of n rows as wide as one imported volunteer, in one transaction."""
    rng = random.Random(5)
    table = sql.Identifier(schema, "raw_volunteers")
    summary = json.dumps({"pad": "x" * max(0, width["summary"] - 12)})
    rows = [(os.urandom(16).hex(), UNIT_CODES[i % 45], "active", summary, "s" * width["sealed"],
             rng.randbytes(width["event"] + width["reservation"])) for i in range(n)]
    with psycopg.connect(config.postgres_dsn) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE TABLE {} (position bigserial UNIQUE, id uuid PRIMARY KEY, unit text, "
                             "status text, summary jsonb, sealed text, state bytea)").format(table))
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(sql.SQL("INSERT INTO {} (id, unit, status, summary, sealed, state) "
                                    "VALUES (%s, %s, %s, %s, %s, %s)").format(table), rows)
        conn.commit()
        return time.perf_counter() - started


# -- main ------------------------------------------------------------------------------------


def report(label: str, n: int, seconds: float) -> float:
    rate = n / seconds
    print(f"{label:<52} {n:>6} in {seconds:7.2f} s = {rate:8,.0f}/s", file=sys.stderr)
    return rate


def main() -> None:
    profile = "--profile" in sys.argv
    phones = Phones()
    rpc_volunteers = [volunteer_payload(i, phones.next()) for i in range(VOLUNTEERS)]
    rpc_enterprises = [enterprise_payload(i, 1) for i in range(ENTERPRISES)]
    sequential = [volunteer_payload(i, phones.next()) for i in range(SINGLE_SEQUENTIAL)]
    concurrent = [volunteer_payload(i, phones.next()) for i in range(SINGLE_CONCURRENT)]
    volunteer_file = volunteers_csv(VOLUNTEERS, phones)
    enterprise_file = enterprises_csv(ENTERPRISES, 2)
    out: dict = {}
    with sandbox() as (config, schemas):
        port = free_port()
        log_path = Path(tempfile.mkdtemp(prefix="zhuqi-bench-registry-")) / "registry.log"
        service = start_service(service_env(config, schemas, port), port, log_path)
        try:
            batch_v = rpc_batches(config, "register_volunteers", rpc_volunteers)
            batch_e = rpc_batches(config, "register_enterprises", rpc_enterprises)
            relay_s = wait_for_relay(config, schemas["registry"], port)
            single_1 = rpc_singles(config, sequential)
            single_n = rpc_singles_concurrent(config, concurrent, CLIENTS)
        finally:
            stop_service(service)
        print(f"registry service log: {log_path}; the relay needed {relay_s:.1f} s more to publish "
              "the batches' events", file=sys.stderr)
        out["rpc_batch_volunteers_per_s"] = round(report(f"RPC register_volunteers, batches of {BATCH}",
                                                         VOLUNTEERS, batch_v))
        out["rpc_batch_enterprises_per_s"] = round(report(f"RPC register_enterprises, batches of {BATCH}",
                                                          ENTERPRISES, batch_e))
        out["rpc_single_1_client_per_s"] = round(report("RPC register_volunteer, 1 client", SINGLE_SEQUENTIAL,
                                                        single_1))
        out["rpc_per_s"] = round(report(f"RPC register_volunteer, {CLIENTS} concurrent clients",
                                        SINGLE_CONCURRENT, single_n))
        out["rpc_clients"] = CLIENTS

        app = bootstrap.build_application(config, pool_size=2)
        try:
            profiler = cProfile.Profile() if profile else None
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            result = imports.import_volunteers(app, volunteer_file, "volunteers.csv")
            if profiler:
                profiler.disable()
            import_v = time.perf_counter() - started
            assert result.ok and len(result.created) == VOLUNTEERS, result.problems[:5]
            started = time.perf_counter()
            result = imports.import_enterprises(app, enterprise_file, "enterprises.csv")
            import_e = time.perf_counter() - started
            assert result.ok and len(result.created) == ENTERPRISES, result.problems[:5]
            started = time.perf_counter()
            result = imports.import_volunteers(app, volunteer_file, "volunteers.csv")
            reimport_v = time.perf_counter() - started
            assert result.ok and not result.created and len(result.unchanged) == VOLUNTEERS
        finally:
            app.close()
        if profiler:
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
        out["import_10k_volunteers_s"] = round(import_v, 3)
        out["import_per_s"] = round(report("import volunteers CSV (one transaction)", VOLUNTEERS, import_v))
        out["import_5k_enterprises_s"] = round(import_e, 3)
        out["import_enterprises_per_s"] = round(report("import enterprises CSV (one transaction)",
                                                       ENTERPRISES, import_e))
        out["reimport_10k_volunteers_s"] = round(reimport_v, 3)
        report("re-import volunteers CSV (all unchanged)", VOLUNTEERS, reimport_v)

        width = stored_width(config, schemas["registry"])
        # bench.common.sandbox drops this schema afterwards.
        raw_s = raw_insert(config, "bench_" + schemas["registry"].split("_b")[-1], width)
        out["raw_insert_per_s"] = round(report(f"raw executemany INSERT, {sum(width.values())} B/row",
                                               VOLUNTEERS, raw_s))
        out["raw_row_bytes"] = sum(width.values())
        out["import_vs_raw"] = round(out["import_per_s"] / out["raw_insert_per_s"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
