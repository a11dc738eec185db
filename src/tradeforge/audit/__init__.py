"""tradeforge.audit: the append-only, hash-chained audit log (SQLite, WAL, synchronous=FULL).

Every decision, risk check, order intent, broker event, reconciliation result, state change
and config or model change can be recorded as one entry, linked by a correlation id, in the
same transaction as the change it records (:func:`append_entry` takes the caller's cursor).
:func:`verify_chain` detects any edited, deleted, reordered or truncated entry and names the
first bad ``seq``; :func:`export_parquet` copies the log for DuckDB. PostgreSQL is the
alternative backend (:func:`open_audit_log` with a ``postgresql://`` URL; ``audit.pg``, which
loads psycopg only when used). Imports only
``tradeforge.core`` (any package may record here). See ``docs/risk.md``.
"""

from tradeforge.audit.errors import AuditError
from tradeforge.audit.export import export_parquet
from tradeforge.audit.log import (
    GENESIS_HASH,
    AuditEntry,
    AuditLog,
    AuditLogBase,
    append_entries,
    append_entry,
    canonical_json,
    connect_sqlite,
    ensure_schema,
    entry_hash,
    format_ts,
    open_audit_log,
)
from tradeforge.audit.verify import (
    Anchor,
    Problem,
    VerifyReport,
    read_anchor,
    verify_chain,
    write_anchor,
)

__all__ = [
    "GENESIS_HASH",
    "Anchor",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditLogBase",
    "Problem",
    "VerifyReport",
    "append_entries",
    "append_entry",
    "canonical_json",
    "connect_sqlite",
    "ensure_schema",
    "entry_hash",
    "export_parquet",
    "format_ts",
    "open_audit_log",
    "read_anchor",
    "verify_chain",
    "write_anchor",
]
