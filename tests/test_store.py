"""The store: TinyDB over an append-only JSON Lines log (real files, real subprocesses)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tinydb import Query, TinyDB

from inspector.store import (
    AppendLogStorage,
    Store,
    StoreCorruptError,
    StoreDB,
    StoreError,
    check_store,
    default_store_path,
    repair_store,
)
from inspector.store.log import HEADER, TORN

ROOT = Path(__file__).resolve().parent.parent


def event(i: int, host: str = "api.example.com", pad: int = 0) -> dict:
    return {"id": f"e{i}", "time": 1000.0 + i, "host": host, "verdict": "clean" if i % 2 else "violation",
            "findings": [{"code": "x", "severity": "info"}], "decoded": {"n": i, "pad": "p" * pad}}


def run_py(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def lines_of(path: Path) -> list[str]:
    return path.read_bytes().decode().split("\n")[:-1]  # not splitlines(): it splits at \x1e too


# ---------------------------------------------------------------------------- basics


def test_insert_read_search_with_tinydb_query(tmp_path):
    path = tmp_path / "store.json"
    store = Store(path)
    ids = store.add_events([event(1), event(2, host="t.vendor.io"), event(3)])
    assert ids == [1, 2, 3]
    assert store.add_event(event(4)) == 4
    assert store.event_count() == 4
    assert [e["doc_id"] for e in store.events()] == [1, 2, 3, 4]
    assert [e["doc_id"] for e in store.events(start=1, limit=2)] == [2, 3]
    assert [e["doc_id"] for e in store.events(start=-1)] == [4]
    assert store.get_event(2)["host"] == "t.vendor.io"
    assert store.get_event(99) is None

    events = store.db.table("events")
    ev = Query()
    assert [d.doc_id for d in events.search(ev.host == "t.vendor.io")] == [2]
    assert events.count(ev.verdict == "violation") == 2
    assert events.get(doc_id=3)["id"] == "e3"
    assert events.get(ev.decoded.n == 4).doc_id == 4
    assert len(events.all()) == 4
    # the query cache is invalidated by writes
    store.add_event(event(5, host="t.vendor.io"))
    assert [d.doc_id for d in events.search(ev.host == "t.vendor.io")] == [2, 5]

    store.update_event(1, {"verdict": "warning", "redecoded": True})
    assert store.get_event(1)["verdict"] == "warning" and store.get_event(1)["redecoded"] is True
    with pytest.raises(StoreError, match="no event 77"):
        store.update_event(77, {"x": 1})
    store.close()

    first, *records = lines_of(path)
    assert json.loads(first) == {"format": "telemetry-inspector-store", "version": 1}
    assert json.loads(records[0]) == {"t": "events", "i": 1, "d": event(1)}
    assert json.loads(records[-1])["d"]["redecoded"] is True


def test_tinydb_table_api_appends(tmp_path):
    path = tmp_path / "db.json"
    db = TinyDB(path, storage=AppendLogStorage)  # stock Table: works (rewrite path)
    db.table("t").insert({"a": 1})
    db.close()
    db = StoreDB(path)  # the appending table class
    t = db.table("t")
    assert t.all() == [{"a": 1}]
    t.insert_multiple([{"a": 2}, {"a": 3}])
    q = Query()
    assert t.update({"b": True}, q.a >= 2) == [2, 3]
    assert t.upsert({"a": 9}, q.a == 9) == [4]
    assert t.upsert({"a": 9, "c": 1}, q.a == 9) == [4]
    assert t.remove(q.a == 1) == [1]
    assert t.remove(doc_ids=[2, 42]) == [2]
    assert [(d.doc_id, d["a"]) for d in t.all()] == [(3, 3), (4, 9)]
    t.truncate()
    assert t.all() == []
    db.close()
    kinds = [json.loads(line) for line in lines_of(path)[1:]]
    assert {"t": "t", "i": 1, "x": 1} in kinds and {"t": "t", "x": "all"} in kinds
    assert StoreDB(path, readonly=True).table("t").all() == []


def test_rules_and_sessions(tmp_path):
    store = Store(tmp_path / "s.json")
    store.set_rule("segment", "policy", "block")
    store.set_rule("t.vendor.io", "host", "sinkhole")
    store.set_rule("segment", "policy", "allow")  # upsert by (kind, target)
    store.set_rule("segment", "vendor", "block")
    rules = store.rules()
    assert [(r["target"], r["kind"], r["action"]) for r in rules] == [
        ("segment", "policy", "allow"), ("t.vendor.io", "host", "sinkhole"), ("segment", "vendor", "block")]
    assert all(isinstance(r["updated"], float) for r in rules)
    with pytest.raises(ValueError):
        store.set_rule("x", "nope", "block")
    assert store.remove_rule("segment", "vendor") is True
    assert store.remove_rule("segment", "vendor") is False
    assert store.remove_rule("segment") is True
    store.reset_rules()
    assert store.rules() == []
    sid = store.start_session({"listen": "127.0.0.1:8080"})
    store.end_session(sid, {"events": 3})
    (session,) = store.sessions()
    assert session["doc_id"] == sid and session["summary"] == {"events": 3} and session["ended"] >= session["started"]
    store.close()


def test_file_mode_0600_and_dirs_0700(tmp_path, caplog):
    path = tmp_path / "deep" / "er" / "store.json"
    Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="inspector.store"):
        Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "readable by other users" in caplog.text


def test_default_path_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "telemetry-inspector" / "store.json"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / ".local" / "share" / "telemetry-inspector" / "store.json"


def test_readonly_never_creates_or_writes(tmp_path):
    path = tmp_path / "none.json"
    with pytest.raises(StoreError, match="does not exist"):
        Store(path, readonly=True)
    assert not path.exists()
    Store(path).close()
    before = path.read_bytes()
    ro = Store(path, readonly=True)
    with pytest.raises(StoreError, match="read-only"):
        ro.add_event(event(1))
    ro.close()
    assert path.read_bytes() == before


def test_disk_full_is_a_one_line_store_error(tmp_path):
    # RLIMIT_FSIZE stands in for a full disk (works as root, unlike chmod tricks).
    path = tmp_path / "s.json"
    Store(path).add_events([event(i) for i in range(3)])
    limit = path.stat().st_size + 2000
    proc = run_py("""
        import resource, signal, sys
        from inspector.store import Store, StoreError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
        s = Store(sys.argv[1])
        try:
            for i in range(1000):
                s.add_event({"n": i, "pad": "x" * 300})
        except StoreError as exc:
            print("ERR", exc)
    """, str(path), str(limit))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    (line,) = out.splitlines()
    assert line.startswith(f"ERR cannot write store {path}: File too large")
    # the store still opens; the interrupted write's fragment is ignored, and closed by the next writer
    store = Store(path)
    count = store.event_count()
    assert count >= 4
    store.add_event(event(99))
    store.close()
    assert Store(path, readonly=True).event_count() == count + 1


# ---------------------------------------------------------------------------- persistence


def test_persistence_across_reopen(tmp_path):
    path = tmp_path / "s.json"
    with Store(path) as store:
        store.add_events([event(i) for i in range(10)])
        store.update_event(3, {"verdict": "warning"})
        store.set_rule("h", "host", "block")
    with Store(path) as store:
        assert store.event_count() == 10
        assert store.get_event(3)["verdict"] == "warning"
        assert store.rules()[0]["target"] == "h"
        assert store.add_event(event(11)) == 11  # ids continue


def test_legacy_tinydb_json_file_opens_and_converts(tmp_path):
    path = tmp_path / "legacy.json"
    db = TinyDB(path)  # TinyDB's default JSONStorage
    db.table("events").insert_multiple([event(i) for i in range(5)])
    db.table("rules").insert({"target": "x", "kind": "host", "action": "block", "updated": 1.0})
    db.close()
    assert path.read_bytes().startswith(b'{"events"')

    ro = Store(path, readonly=True)
    assert ro.event_count() == 5 and ro.rules()[0]["target"] == "x"
    assert check_store(path).legacy is True

    store = Store(path)
    assert store.event_count() == 5
    assert store.add_event(event(6)) == 6  # first write converts, atomically
    store.close()
    assert path.read_bytes().startswith(HEADER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ro.refresh() > 0 and ro.event_count() == 6  # the reader notices the replacement
    assert Store(path, readonly=True).get_event(6)["id"] == "e6"


# ---------------------------------------------------------------------------- crashes


def test_kill_9_during_a_burst_loses_no_acknowledged_event(tmp_path):
    path = tmp_path / "s.json"
    proc = run_py("""
        import sys
        from inspector.store import Store
        s = Store(sys.argv[1], fsync="never")
        i = 0
        while True:
            i += 1
            batch = [{"n": i, "k": k, "pad": "x" * (50 * (i % 40))} for k in range(1 + i % 3)]
            for doc_id in s.add_events(batch):
                sys.stdout.write(f"{doc_id}\\n")
            sys.stdout.flush()
    """, str(path))
    time.sleep(0.2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < 200_000):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    acked = [int(line) for line in out.split("\n")[:-1]]  # the last piece may be cut short
    assert len(acked) > 100
    store = Store(path, readonly=True)
    present = {e["doc_id"] for e in store.events()}
    assert set(acked) <= present
    assert store.event_count() == len(present)
    # and a writer can carry on after the crash
    writer = Store(path)
    writer.add_event({"after": True})
    writer.close()
    assert check_store(path).bad_lines == []


def test_truncated_last_line_opens_and_is_closed_off_by_the_next_writer(tmp_path):
    path = tmp_path / "s.json"
    with Store(path) as store:
        store.add_events([event(i) for i in range(3)])
    with open(path, "ab") as f:
        f.write(b'{"t":"events","i":4,"d":{"id":"e4","ho')  # a write cut short
    assert Store(path, readonly=True).event_count() == 3
    report = check_store(path)
    assert report.partial_tail and report.ok
    with Store(path) as store:
        assert store.event_count() == 3
        assert store.add_event(event(5)) == 4
    raw = lines_of(path)
    assert raw[-2].endswith(TORN.decode()) and json.loads(raw[-1])["i"] == 4  # not glued on
    store = Store(path, readonly=True)
    assert [e["id"] for e in store.events()] == ["e0", "e1", "e2", "e5"]
    report = check_store(path)
    assert report.ok and report.torn_lines == [5] and not report.partial_tail


def test_corrupt_middle_line_check_and_repair(tmp_path):
    path = tmp_path / "s.json"
    with Store(path) as store:
        store.add_events([event(i) for i in range(6)])
    raw = lines_of(path)
    raw[3] = raw[3][:20] + "#garbage#" + raw[3][20:]  # line 4: event doc_id 3
    path.write_text("\n".join(raw) + "\n")
    os.chmod(path, 0o600)

    with pytest.raises(StoreCorruptError) as info:
        Store(path)
    message = str(info.value)
    assert "\n" not in message and f"{path}" in message and "line 4" in message
    assert f"telemetry-inspector store repair --store {path}" in message
    with pytest.raises(StoreCorruptError):
        Store(path, readonly=True)

    report = check_store(path)
    assert report.bad_lines == [4] and not report.ok and report.counts == {"events": 5}

    original = path.read_bytes()
    repaired = repair_store(path)
    assert repaired.ok and repaired.dropped_lines == [4] and repaired.counts == {"events": 5}
    assert repaired.backup is not None and repaired.backup.read_bytes() == original
    assert stat.S_IMODE(repaired.backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with Store(path) as store:
        assert [e["doc_id"] for e in store.events()] == [1, 2, 4, 5, 6]
        assert store.add_event(event(7)) == 7
    repair_store(path)  # again: a second backup, the first one kept
    assert len(list(tmp_path.glob("s.json.bak-*"))) == 2


# ---------------------------------------------------------------------------- several processes


def test_writer_process_and_refreshing_reader(tmp_path):
    path = tmp_path / "s.json"
    Store(path).close()
    total = 1500
    proc = run_py("""
        import sys
        from inspector.store import Store
        s = Store(sys.argv[1])
        for i in range(int(sys.argv[2])):
            s.add_event({"n": i, "pad": "y" * (i % 500)})
        s.close()
        print("done")
    """, str(path), str(total))
    reader = Store(path, readonly=True)
    seen, counts = [], []
    while proc.poll() is None:
        reader.refresh()
        count = reader.event_count()
        counts.append(count)
        rows = reader.events(start=len(seen))
        assert [r["n"] for r in rows] == list(range(len(seen), len(seen) + len(rows)))
        seen += rows
        time.sleep(0.002)
    out, err = proc.communicate(timeout=20)
    assert out.strip() == "done", err
    reader.refresh()
    assert counts == sorted(counts) and len(set(counts)) > 2  # monotonic, and seen growing
    assert reader.event_count() == total
    assert [r["doc_id"] for r in reader.events()] == list(range(1, total + 1))


def test_rule_set_in_one_handle_visible_in_another_after_refresh(tmp_path):
    path = tmp_path / "s.json"
    a, b = Store(path), Store(path)
    a.add_event(event(1))
    b.set_rule("t.vendor.io", "host", "block")
    assert a.rules() == []
    assert a.refresh() == 1
    assert a.rules()[0]["action"] == "block"
    # ids stay consistent: each writer catches up under the lock
    assert b.add_event(event(2)) == 2
    assert a.add_event(event(3)) == 3
    b.refresh()
    assert [e["doc_id"] for e in b.events()] == [1, 2, 3]
    # query caches of the other handle are invalidated by refresh
    q = Query().host == "h"
    assert a.db.table("events").search(q) == []
    b.add_event(event(4, host="h"))
    a.refresh()
    assert [d.doc_id for d in a.db.table("events").search(q)] == [4]
    a.close()
    b.close()


def test_concurrent_writers_get_distinct_ids(tmp_path):
    path = tmp_path / "s.json"
    Store(path).close()
    code = """
        import sys
        from inspector.store import Store
        s = Store(sys.argv[1])
        ids = [s.add_event({"w": sys.argv[2], "n": i}) for i in range(300)]
        print(" ".join(map(str, ids)))
    """
    procs = [run_py(code, str(path), w) for w in "ab"]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        ids += map(int, out.split())
    assert sorted(ids) == list(range(1, 601))
    assert Store(path, readonly=True).event_count() == 600


def test_reader_reloads_after_compaction_by_another_process(tmp_path):
    path = tmp_path / "s.json"
    writer = Store(path)
    writer.add_events([event(i) for i in range(20)])
    reader = Store(path, readonly=True)
    writer.db.table("events").remove(doc_ids=range(1, 11))
    writer.compact()
    writer.add_event(event(21))
    assert reader.refresh() > 0
    assert [e["doc_id"] for e in reader.events()] == list(range(11, 22))
    writer.close()


# ---------------------------------------------------------------------------- retention and cost


def test_retention_keeps_the_newest(tmp_path):
    path = tmp_path / "s.json"
    store = Store(path, max_events=50)
    for i in range(130):
        store.add_event(event(i))
    store.add_events([event(1000 + i) for i in range(7)])
    assert store.event_count() == 50
    ids = [e["doc_id"] for e in store.events()]
    assert ids == list(range(88, 138))
    store.close()
    assert [e["doc_id"] for e in Store(path, readonly=True).events()] == ids


def test_retention_compacts_when_dead_records_pile_up(tmp_path):
    path = tmp_path / "s.json"
    store = Store(path, max_events=100)
    for i in range(0, 3000, 10):
        store.add_events([event(i + k) for k in range(10)])
    store.close()
    records = len(lines_of(path)) - 1
    assert records <= 2 * 100 + 2 * 1000 + 20  # compacted along the way, not 5,800 records
    assert Store(path, readonly=True).event_count() == 100


def test_insert_appends_constant_bytes_whatever_the_store_size(tmp_path):
    def growth(n_before: int, name: str) -> list[int]:
        path = tmp_path / name
        store = Store(path, fsync="never")
        store.add_events([event(i) for i in range(n_before)])
        prefix = path.read_bytes()
        inode = path.stat().st_ino
        sizes = [path.stat().st_size]
        for _i in range(20):
            store.add_event(event(7))
            sizes.append(path.stat().st_size)
        assert path.stat().st_ino == inode and path.read_bytes().startswith(prefix)  # appended, not rewritten
        store.close()
        return [b - a for a, b in itertools.pairwise(sizes)]

    small = growth(10, "small.json")
    large = growth(5000, "large.json")
    record = len(json.dumps({"t": "events", "i": 10, "d": event(7)}, separators=(",", ":"))) + 1
    # one record per insert; only the digits of the doc id differ
    assert all(abs(g - record) <= 2 for g in small)
    assert all(abs(g - record) <= 4 for g in large)


def test_write_only_handle_keeps_no_event_bodies_and_readers_see_everything(tmp_path):
    path = tmp_path / "store.json"
    writer = Store(path, keep_events=False, max_events=50)
    try:
        for i in range(10):
            writer.add_events([{"url": f"https://t.example/{i}/{j}", "body": "x" * 2000} for j in range(10)])
        writer.set_rule("refine", "vendor", "block")
        assert writer.event_count() == 50  # retention still applies
        assert all(type(doc) is int for doc in writer.storage.table_data("events").values())  # offsets
        assert writer.rules()[0]["action"] == "block"  # other tables are kept whole
        with pytest.raises(StoreError, match="write-only"):
            writer.events()
        with Store(path, readonly=True) as reader:
            events = reader.events()
            assert len(events) == 50 and events[-1]["url"] == "https://t.example/9/9"
            assert events[0]["body"] == "x" * 2000
    finally:
        writer.close()


def test_write_only_handle_with_retention_compacts_its_file(tmp_path):
    """A proxy with --max-events and no reader: the file must not grow with delete records."""
    path = tmp_path / "store.json"
    with Store(path, keep_events=False, max_events=100) as writer:
        sizes = []
        for i in range(60):
            writer.add_events([{"url": f"https://t.example/{i}/{j}", "body": "x" * 500} for j in range(50)])
            sizes.append(path.stat().st_size)
        assert writer.event_count() == 100 and len(writer.storage.table_data("events")) == 100
    # 3,000 events of ~570 bytes written, 2,900 deleted (1.8 MB of records): the file was
    # rewritten along the way (it shrank) and never held more than the newest events and
    # ~1,000 superseded records.
    assert any(after < before for before, after in itertools.pairwise(sizes)), sizes
    assert max(sizes) < 600_000, sizes
    with Store(path, readonly=True) as reader:
        events = reader.events()
        assert len(events) == 100 and events[-1]["url"] == "https://t.example/59/49"
        assert events[0]["url"] == "https://t.example/58/0" and events[0]["body"] == "x" * 500


def test_lazy_handle_keeps_offsets_reads_documents_from_the_file(tmp_path):
    path = tmp_path / "store.json"
    with Store(path) as full:
        full.add_events([event(i, pad=3000) for i in range(200)])
        full.set_rule("refine", "vendor", "block")
    lazy = Store(path, lazy_events=True, max_events=150)
    try:
        table = lazy.storage.table_data("events")
        assert len(table) == 200 and all(type(v) is int for v in table.values())
        assert lazy.event_ids()[:3] == [1, 2, 3] and lazy.event_ids(after=198) == [199, 200]
        assert lazy.get_event(7)["decoded"]["n"] == 6 and lazy.get_event(999) is None
        assert [e["decoded"]["n"] for e in lazy.events(-2)] == [198, 199]
        assert lazy.rules()[0]["target"] == "refine"  # other tables are parsed as usual
        # Writes from this handle: new documents get offsets too; retention deletes the oldest.
        new = lazy.add_events([event(1000, pad=10)])
        assert lazy.get_event(new[0])["decoded"]["n"] == 1000
        assert lazy.event_count() == 150 and lazy.event_ids()[0] == 52
        lazy.update_event(new[0], {"verdict": "warning"})
        assert lazy.get_event(new[0])["verdict"] == "warning"
        with pytest.raises(StoreError, match="no event"):
            lazy.update_event(1, {"verdict": "x"})
        # Another process appends, then compacts: refresh follows both, offsets stay right.
        with Store(path) as other:
            other.add_events([event(2000)])
            assert lazy.refresh() and lazy.get_event(lazy.event_ids()[-1])["decoded"]["n"] == 2000
            other.compact()
        assert lazy.refresh()
        assert lazy.event_count() == 151 and lazy.get_event(52)["decoded"]["n"] == 51
        # Compaction by the lazy handle itself copies the records and keeps every document.
        before = lazy.events()
        lazy.compact()
        assert lazy.events() == before
    finally:
        lazy.close()
    with Store(path, readonly=True) as check:
        assert [e["decoded"]["n"] for e in check.events()][-3:] == [199, 1000, 2000]
        assert check.get_event(201)["verdict"] == "warning"


def test_lazy_handle_memory_does_not_hold_the_events(tmp_path):
    import tracemalloc
    path = tmp_path / "store.json"
    with Store(path, keep_events=False) as writer:
        for _ in range(20):
            writer.add_events([event(i, pad=2000) for i in range(100)])
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        lazy = Store(path, lazy_events=True)
        lazy_cost = tracemalloc.get_traced_memory()[0] - base
        lazy.close()
        base = tracemalloc.get_traced_memory()[0]
        full = Store(path)
        full_cost = tracemalloc.get_traced_memory()[0] - base
        full.close()
    finally:
        tracemalloc.stop()
    # 2,000 events of ~2 KB: the full handle holds megabytes, the lazy one ids and offsets.
    assert full_cost > 4_000_000
    assert lazy_cost < 400_000, lazy_cost


def test_lazy_handle_torn_and_corrupt_records(tmp_path):
    path = tmp_path / "store.json"
    with Store(path) as store:
        store.add_events([event(i) for i in range(3)])
    with open(path, "ab") as f:
        f.write(b'{"t":"events","i":4,"d":{"cut sh')  # a write cut short: ignored
    with Store(path, lazy_events=True) as lazy:
        assert lazy.event_ids() == [1, 2, 3]
        lazy.add_events([event(9)])  # closes the fragment off, as the full handle does
        assert lazy.get_event(4)["decoded"]["n"] == 9
    raw = path.read_bytes()
    # A record whose body was damaged in place: found when the event is read, one clear error.
    damaged = raw.replace(b'"verdict":"clean"', b'"verdict":"cl\xffan"', 1)
    path.write_bytes(damaged)
    with Store(path, lazy_events=True) as lazy:
        with pytest.raises(StoreCorruptError, match="corrupt at byte"):
            lazy.get_event(2)
        assert lazy.get_event(1)["decoded"]["n"] == 0
    path.write_bytes(raw.replace(b'{"t":"events","i":2,"d":{', b'{"t":"events","i":2,"d":[', 1))
    with pytest.raises(StoreCorruptError, match="line 3"):
        Store(path, lazy_events=True)


def test_write_only_handle_without_retention_keeps_nothing_per_event(tmp_path):
    import tracemalloc
    path = tmp_path / "store.json"
    with Store(path) as other:
        other.add_events([event(i) for i in range(3)])
    tracemalloc.start()
    try:
        writer = Store(path, keep_events=False)
        base = tracemalloc.get_traced_memory()[0]
        for i in range(50):
            writer.add_events([event(i) for _ in range(100)])
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    try:
        assert grown < 100_000, grown  # 5,000 events: no per-event entry at all
        assert writer.storage.table_data("events") == {}
        with pytest.raises(StoreError, match="write-only"):
            writer.event_count()
        with Store(path) as other:  # ids still follow on from what the file holds
            other.add_events([event(99)])
        assert writer.add_events([event(100)]) == [5005]
    finally:
        writer.close()
    with Store(path, readonly=True) as reader:
        assert reader.event_count() == 5005 and reader.get_event(5005)["decoded"]["n"] == 100


def test_lazy_scan_reads_in_order_including_records_longer_than_a_block(tmp_path):
    from inspector.store.storage import BLOCK
    path = tmp_path / "store.json"
    with Store(path) as full:
        full.add_events([event(i, pad=10) for i in range(5)])
        full.add_events([event(5, pad=BLOCK + 5000)])  # one record bigger than a read block
        full.add_events([event(i, pad=10) for i in range(6, 9)])
        full.update_event(2, {"verdict": "warning"})  # a later record replaces an earlier one
    with Store(path, lazy_events=True) as lazy:
        ids = lazy.event_ids()
        docs = list(lazy.iter_events([*ids, 999]))
        assert [d["decoded"]["n"] for d in docs[:-1]] == list(range(9)) and docs[-1] is None
        assert docs[1]["verdict"] == "warning" and len(docs[5]["decoded"]["pad"]) == BLOCK + 5000
        assert [d["doc_id"] for d in docs[:-1]] == ids
        assert next(iter(lazy.iter_events(reversed(ids))))["decoded"]["n"] == 8  # any order works


def test_lines_rewritten_by_another_json_tool_read_as_store_check_reads_them(tmp_path):
    """What `store check` accepts every reader accepts: a record whose keys are in another
    order, spaced out, with escapes or raw UTF-8, or a document missing optional keys."""
    path = tmp_path / "store.json"
    with Store(path) as writer:
        writer.add_events([event(i) for i in range(6)])
    lines = lines_of(path)
    recs = [json.loads(line) for line in lines[1:]]
    recs[0]["d"]["host"] = "café.example"
    lines[1] = json.dumps(dict(reversed(list(recs[0].items()))), ensure_ascii=False, indent=None)  # d, i, t
    lines[2] = json.dumps(recs[1], separators=(", ", ": "), sort_keys=True)                      # spaced
    lines[3] = json.dumps(recs[2]).replace('"events"', '"\\u0065vents"')                          # escaped
    lines[4] = json.dumps({"t": "events", "i": recs[3]["i"], "d": {"host": "bare.example"}})      # keys missing
    lines[5] = json.dumps(recs[4]) + "  \r"                                                       # CRLF, spaces
    path.write_bytes(("\n".join(lines) + "\n").encode())
    report = check_store(path)
    assert report.ok and report.counts == {"events": 6}
    for options in ({}, {"lazy_events": True}, {"readonly": True}):
        with Store(path, **options) as reader:
            docs = reader.events()
            assert [d["host"] for d in docs[:4]] == ["café.example", "api.example.com", "api.example.com",
                                                     "bare.example"], options
            assert [d.get("decoded", {}).get("n") for d in docs] == [0, 1, 2, None, 4, 5]
            assert reader.get_event(reader.event_ids()[0])["host"] == "café.example"
