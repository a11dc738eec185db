"""Export the audit log to Parquet (for DuckDB and pandas), in ``seq`` order.

Columns: ``seq`` (int64), ``ts`` (timestamp, microseconds, UTC), ``kind``, ``correlation_id``,
``payload`` (the canonical JSON text, so DuckDB's ``json_extract`` reads it), ``prev_hash`` and
``hash`` (strings). The rows are copied as stored: a verifier can recompute the chain from the
file alone. pyarrow is imported on first use.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from tradeforge.audit.errors import AuditError

_CHUNK = 100_000


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("seq", pa.int64()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("kind", pa.string()),
            ("correlation_id", pa.string()),
            ("payload", pa.string()),
            ("prev_hash", pa.string()),
            ("hash", pa.string()),
        ]
    )


def export_parquet(
    conn: sqlite3.Connection, path: str | Path, *, since_seq: int | None = None
) -> int:
    """Write the entries (from ``since_seq`` on, default all) to the Parquet file ``path``
    (written to a temporary name, then renamed); returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    schema = _schema()
    sql = "SELECT seq, ts, kind, correlation_id, payload, prev_hash, hash FROM audit_log"
    params: tuple[int, ...] = ()
    if since_seq is not None:
        sql += " WHERE seq >= ?"
        params = (int(since_seq),)
    total = 0
    try:
        cursor = conn.execute(sql + " ORDER BY seq", params)
        with pq.ParquetWriter(str(tmp), schema) as writer:
            while rows := cursor.fetchmany(_CHUNK):
                columns = list(zip(*rows, strict=True))
                stamps = [datetime.fromisoformat(str(t)) for t in columns[1]]
                arrays = [pa.array(columns[0], pa.int64()), pa.array(stamps, schema.field(1).type)]
                arrays += [pa.array(col, pa.string()) for col in columns[2:]]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                total += len(rows)
            if total == 0:
                writer.write_table(schema.empty_table())
        tmp.replace(out)
    except (sqlite3.Error, OSError, ValueError, pa.ArrowException) as exc:
        tmp.unlink(missing_ok=True)
        raise AuditError(f"audit export to {str(out)!r} failed: {exc}") from exc
    return total


__all__ = ["export_parquet"]
