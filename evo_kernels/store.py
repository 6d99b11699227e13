"""The one place run state lives: problems, candidates, evaluations, baselines, search checkpoints and
the results of finished searches. `Store` is the interface (tests/conformance/test_store.py holds
every implementation to it); `SQLiteStore` is the implementation, one file per run directory.

Every write is one transaction, and SQLite's journal makes a killed process leave either the whole
row or none of it. WAL mode lets readers (`show`, reports) look at a run while it is being written.
Files a run writes for people (summary.json, best.py, reports) are written from here and never
read back.
"""
from __future__ import annotations

import json
import sqlite3
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .model.candidate import Candidate, Evaluation

STORE_FILE = "store.sqlite"


@dataclass(frozen=True)
class ProblemRow:
    id: str
    path: str
    name: str
    level: str
    source: str


@dataclass(frozen=True)
class Record:
    """One evaluation as recorded: its order, wall-clock time, candidate, outcome and the driver's context
    (island, tuning trial) that a resumed run needs to put it back where it belongs."""

    seq: int
    created: float
    candidate: Candidate
    evaluation: Evaluation
    meta: dict[str, Any]


class Store(ABC):
    """What a run reads and writes. Runs are rows (dicts: id, created, kind, config, state, updated,
    problem_id); a suite has one run per problem in one store."""

    # -- writes ------------------------------------------------------------------------------------
    @abstractmethod
    def start_run(self, kind: str, config: dict[str, Any], problem_id: str | None = None) -> int: ...

    @abstractmethod
    def save_state(self, run_id: int, state: dict[str, Any]) -> None:
        """The search's checkpoint (population, pending work) for a resumed run."""

    @abstractmethod
    def add_problem(self, problem_id: str, path: str, name: str, level: str, source: str) -> None: ...

    @abstractmethod
    def add_evaluation(self, problem_id: str, candidate: Candidate, ev: Evaluation,
                       meta: dict[str, Any] | None = None) -> int:
        """Record a candidate and its evaluation together, both or neither; the evaluation's seq."""

    @abstractmethod
    def save_baselines(self, problem_id: str, hardware: str, data: dict[str, Any]) -> None: ...

    @abstractmethod
    def save_summary(self, problem_id: str, summary: dict[str, Any]) -> None:
        """A finished search's result (what summary.json shows), replacing an earlier one."""

    @abstractmethod
    def save_confirmation(self, problem_id: str, candidate: Candidate, ev: Evaluation) -> None:
        """A candidate's confirmation (timed again in rounds with the baselines), replacing an earlier one."""

    # -- reads -------------------------------------------------------------------------------------
    @abstractmethod
    def runs(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def problems(self) -> list[ProblemRow]:
        """Every problem of the store, by level, then name."""

    @abstractmethod
    def baselines(self, problem_id: str, hardware: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def records(self, problem_id: str | None = None, after_seq: int = 0) -> list[Record]:
        """Evaluations recorded after `after_seq` (of one problem, or all), in the order recorded."""

    @abstractmethod
    def summary(self, problem_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def confirmations(self, problem_id: str) -> dict[str, Evaluation]:
        """Each confirmed candidate's confirmation, by candidate id."""

    @abstractmethod
    def close(self) -> None: ...

    # -- derived reads (every implementation gets them from the ones above) --------------------------
    def latest_run(self) -> dict[str, Any] | None:
        runs = self.runs()
        return runs[-1] if runs else None

    def run_for(self, problem_id: str) -> dict[str, Any] | None:
        mine = [r for r in self.runs() if r["problem_id"] == problem_id]
        return mine[-1] if mine else None

    def evaluation_rows(self, problem_id: str, after_seq: int = 0) -> list[tuple[int, Candidate, Evaluation, dict[str, Any]]]:
        """(seq, candidate, evaluation, meta) recorded after `after_seq`, in order."""
        return [(r.seq, r.candidate, r.evaluation, r.meta) for r in self.records(problem_id, after_seq)]

    def evaluations(self, problem_id: str | None = None) -> Iterator[tuple[Candidate, Evaluation]]:
        for r in self.records(problem_id):
            yield r.candidate, r.evaluation

    def last_seq(self, problem_id: str) -> int:
        recs = self.records(problem_id)
        return recs[-1].seq if recs else 0

    def evaluation_spans(self, problem_id: str) -> list[tuple[float, float]]:
        """(start, end) wall-clock times of each evaluation of a problem: when it was recorded, less its
        duration in the evaluator."""
        return [(r.created - float(r.evaluation.duration_s or 0.0), r.created) for r in self.records(problem_id)]

    def evaluated_ids(self, problem_id: str) -> set[str]:
        return {r.candidate.id for r in self.records(problem_id)}

    def count_evaluations(self, problem_id: str | None = None) -> int:
        return len(self.records(problem_id))

    def candidate(self, problem_id: str, candidate_id: str) -> Candidate | None:
        return next((r.candidate for r in self.records(problem_id) if r.candidate.id == candidate_id), None)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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
CREATE TABLE IF NOT EXISTS summaries (
    problem_id TEXT PRIMARY KEY, data TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS confirmations (
    problem_id TEXT NOT NULL, candidate_id TEXT NOT NULL, data TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (problem_id, candidate_id)
);
"""


class SQLiteStore(Store):
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

    # -- writes ------------------------------------------------------------------------------------
    def start_run(self, kind: str, config: dict[str, Any], problem_id: str | None = None) -> int:
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

    def add_evaluation(self, problem_id: str, candidate: Candidate, ev: Evaluation,
                       meta: dict[str, Any] | None = None) -> int:
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

    def save_summary(self, problem_id: str, summary: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO summaries(problem_id, data, created) VALUES (?, ?, ?)",
                            (problem_id, json.dumps(summary), time.time()))

    def save_confirmation(self, problem_id: str, candidate: Candidate, ev: Evaluation) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO confirmations(problem_id, candidate_id, data, created) "
                            "VALUES (?, ?, ?, ?)", (problem_id, candidate.id, json.dumps(ev.to_dict()), time.time()))

    # -- reads -------------------------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM runs ORDER BY id")]

    def confirmations(self, problem_id: str) -> dict[str, Evaluation]:
        rows = self.db.execute("SELECT candidate_id, data FROM confirmations WHERE problem_id = ? ORDER BY created",
                               (problem_id,))
        return {r["candidate_id"]: Evaluation.from_dict(json.loads(r["data"])) for r in rows}

    def latest_run(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else dict(row)

    def run_for(self, problem_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE problem_id = ? ORDER BY id DESC LIMIT 1",
                              (problem_id,)).fetchone()
        return None if row is None else dict(row)

    def problems(self) -> list[ProblemRow]:
        rows = self.db.execute("SELECT id, path, name, level, source FROM problems ORDER BY level, name")
        return [ProblemRow(r["id"], r["path"], r["name"], r["level"] or "", r["source"]) for r in rows]

    def baselines(self, problem_id: str, hardware: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT data FROM baselines WHERE problem_id = ? AND hardware = ?",
                              (problem_id, hardware)).fetchone()
        return None if row is None else json.loads(row["data"])

    def records(self, problem_id: str | None = None, after_seq: int = 0) -> list[Record]:
        query = ("SELECT e.seq AS seq, e.created AS ecreated, e.data AS edata, c.* FROM evaluations e "
                 "JOIN candidates c ON c.id = e.candidate_id AND c.problem_id = e.problem_id WHERE e.seq > ?")
        args: tuple[Any, ...] = (after_seq,)
        if problem_id is not None:
            query += " AND e.problem_id = ?"
            args += (problem_id,)
        out = []
        for row in self.db.execute(query + " ORDER BY e.seq", args):
            data = json.loads(row["edata"])
            out.append(Record(int(row["seq"]), float(row["ecreated"]), _candidate(row), Evaluation.from_dict(data),
                              data.get("meta") or {}))
        return out

    def last_seq(self, problem_id: str) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM evaluations WHERE problem_id = ?", (problem_id,)).fetchone()
        return int(row[0] or 0)

    def count_evaluations(self, problem_id: str | None = None) -> int:
        if problem_id is None:
            return int(self.db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
        return int(self.db.execute("SELECT COUNT(*) FROM evaluations WHERE problem_id = ?", (problem_id,)).fetchone()[0])

    def summary(self, problem_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT data FROM summaries WHERE problem_id = ?", (problem_id,)).fetchone()
        return None if row is None else json.loads(row["data"])


def _candidate(row: sqlite3.Row) -> Candidate:
    return Candidate(source=row["source"], params=json.loads(row["params"]), parents=tuple(json.loads(row["parents"])),
                     proposer=row["proposer"], technique=row["technique"], generation=row["generation"])


def open_store(run_dir: str | Path) -> Store:
    """The store of a run directory (created when missing)."""
    return SQLiteStore(Path(run_dir) / STORE_FILE)


def existing_store(run_dir: str | Path) -> Store:
    """The store of a run directory that must hold one; FileNotFoundError naming it otherwise."""
    path = Path(run_dir) / STORE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no run here (no {STORE_FILE})")
    return SQLiteStore(path)
