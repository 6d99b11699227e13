"""SQLite store: one file per run directory; the one place run state lives.

Tables: runs, problems, candidates (source, params, lineage), evaluations (status, reason, timings,
device), baselines. Every write is one transaction (`with self.db:`), and SQLite's journal makes a
killed process leave either the whole row or none of it. WAL mode lets readers (`show`, reports)
look at a run while it is being written.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from .candidate import Candidate, Evaluation

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, kind TEXT NOT NULL, config TEXT NOT NULL,
    state TEXT, updated REAL, problem_id TEXT
);
CREATE TABLE IF NOT EXISTS problems (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, name TEXT NOT NULL, level TEXT, source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    id TEXT NOT NULL, problem_id TEXT NOT NULL REFERENCES problems(id), source TEXT NOT NULL,
    params TEXT NOT NULL, parents TEXT NOT NULL, proposer TEXT NOT NULL, technique TEXT NOT NULL,
    generation INTEGER NOT NULL, created REAL NOT NULL, PRIMARY KEY (problem_id, id)
);
CREATE TABLE IF NOT EXISTS evaluations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, problem_id TEXT NOT NULL, candidate_id TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT NOT NULL, device TEXT NOT NULL, hardware TEXT NOT NULL,
    median_ms REAL, speedup REAL, data TEXT NOT NULL, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_by_candidate ON evaluations(problem_id, candidate_id);
CREATE TABLE IF NOT EXISTS baselines (
    problem_id TEXT NOT NULL, hardware TEXT NOT NULL, data TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (problem_id, hardware)
);
"""


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level="DEFERRED")
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        with self.db:
            self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- writes (each one transaction) ------------------------------------------------------------
    def start_run(self, kind: str, config: dict[str, Any], problem_id: str | None = None) -> int:
        """A run row: one per problem searched (a suite has several in one store)."""
        with self.db:
            cur = self.db.execute("INSERT INTO runs(created, kind, config, problem_id) VALUES (?, ?, ?, ?)",
                                  (time.time(), kind, json.dumps(config), problem_id))
        return int(cur.lastrowid)

    def save_state(self, run_id: int, state: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("UPDATE runs SET state = ?, updated = ? WHERE id = ?",
                            (json.dumps(state), time.time(), run_id))

    def add_problem(self, problem_id: str, path: str, name: str, level: str, source: str) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO problems(id, path, name, level, source) VALUES (?, ?, ?, ?, ?)",
                            (problem_id, path, name, level, source))

    def add_candidate(self, problem_id: str, c: Candidate) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO candidates(id, problem_id, source, params, parents, proposer, technique,"
                " generation, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (c.id, problem_id, c.source, json.dumps(c.params, sort_keys=True), json.dumps(list(c.parents)),
                 c.proposer, c.technique, c.generation, time.time()))

    def add_evaluation(self, problem_id: str, candidate: Candidate, ev: Evaluation,
                       meta: dict[str, Any] | None = None) -> int:
        """Record a candidate and its evaluation together: both rows or neither.

        `meta` is the driver's context for the evaluation (island, tuning trial), kept so a resumed
        run can put the result back where it belongs."""
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO candidates(id, problem_id, source, params, parents, proposer, technique,"
                " generation, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (candidate.id, problem_id, candidate.source, json.dumps(candidate.params, sort_keys=True),
                 json.dumps(list(candidate.parents)), candidate.proposer, candidate.technique,
                 candidate.generation, time.time()))
            cur = self.db.execute(
                "INSERT INTO evaluations(problem_id, candidate_id, status, reason, device, hardware, median_ms,"
                " speedup, data, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (problem_id, candidate.id, ev.status, ev.reason, ev.device, ev.hardware, ev.median_ms, ev.speedup,
                 json.dumps({**ev.to_dict(), "meta": meta or {}}), time.time()))
        return int(cur.lastrowid)

    def save_baselines(self, problem_id: str, hardware: str, data: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO baselines(problem_id, hardware, data, created) VALUES (?, ?, ?, ?)",
                            (problem_id, hardware, json.dumps(data), time.time()))

    # -- reads ------------------------------------------------------------------------------------
    def latest_run(self) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()

    def run_for(self, problem_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM runs WHERE problem_id = ? ORDER BY id DESC LIMIT 1",
                               (problem_id,)).fetchone()

    def runs(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM runs ORDER BY id"))

    def baselines(self, problem_id: str, hardware: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT data FROM baselines WHERE problem_id = ? AND hardware = ?",
                              (problem_id, hardware)).fetchone()
        return None if row is None else json.loads(row["data"])

    def candidate(self, problem_id: str, candidate_id: str) -> Candidate | None:
        row = self.db.execute("SELECT * FROM candidates WHERE problem_id = ? AND id = ?",
                              (problem_id, candidate_id)).fetchone()
        return None if row is None else _candidate(row)

    def evaluations(self, problem_id: str | None = None) -> Iterator[tuple[Candidate, Evaluation]]:
        """Every evaluation with its candidate, in the order they were recorded."""
        query = ("SELECT e.data AS edata, c.* FROM evaluations e JOIN candidates c "
                 "ON c.id = e.candidate_id AND c.problem_id = e.problem_id")
        args: tuple[Any, ...] = ()
        if problem_id is not None:
            query += " WHERE e.problem_id = ?"
            args = (problem_id,)
        for row in self.db.execute(query + " ORDER BY e.seq", args):
            yield _candidate(row), Evaluation.from_dict(json.loads(row["edata"]))

    def evaluation_rows(self, problem_id: str, after_seq: int = 0) -> list[tuple[int, Candidate, Evaluation, dict[str, Any]]]:
        """(seq, candidate, evaluation, meta) recorded after `after_seq`, in order."""
        rows = self.db.execute(
            "SELECT e.seq AS seq, e.data AS edata, c.* FROM evaluations e JOIN candidates c "
            "ON c.id = e.candidate_id AND c.problem_id = e.problem_id WHERE e.problem_id = ? AND e.seq > ? "
            "ORDER BY e.seq", (problem_id, after_seq))
        out = []
        for row in rows:
            data = json.loads(row["edata"])
            out.append((int(row["seq"]), _candidate(row), Evaluation.from_dict(data), data.get("meta") or {}))
        return out

    def evaluation_spans(self, problem_id: str) -> list[tuple[float, float]]:
        """(start, end) wall-clock times of each evaluation of a problem: when it was recorded, less
        its duration in the evaluator."""
        rows = self.db.execute("SELECT created, data FROM evaluations WHERE problem_id = ?", (problem_id,))
        return [(float(r[0]) - float(json.loads(r[1]).get("duration_s") or 0.0), float(r[0])) for r in rows]

    def evaluated_ids(self, problem_id: str) -> set[str]:
        rows = self.db.execute("SELECT DISTINCT candidate_id FROM evaluations WHERE problem_id = ?", (problem_id,))
        return {r[0] for r in rows}

    def count_evaluations(self, problem_id: str | None = None) -> int:
        if problem_id is None:
            return int(self.db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
        return int(self.db.execute("SELECT COUNT(*) FROM evaluations WHERE problem_id = ?", (problem_id,)).fetchone()[0])


def _candidate(row: sqlite3.Row) -> Candidate:
    return Candidate(source=row["source"], params=json.loads(row["params"]), parents=tuple(json.loads(row["parents"])),
                     proposer=row["proposer"], technique=row["technique"], generation=row["generation"])
