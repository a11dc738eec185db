"""``tradeforge serve CONFIG [--host 127.0.0.1] [--port 8000]``: the operating service.

One process: the trading node (paper on the local venue by default), the scheduler, the API,
the dashboard and ``/metrics``. The API key comes from ``$TRADEFORGE_API_KEY`` (generated and
printed when unset); ``$TRADEFORGE_METRICS_TOKEN_FILE`` names a file whose token opens
``/metrics`` only (Prometheus); ``$TRADEFORGE_STATE_DIR`` is the default ``--state``. Logs are one
JSON object per line on stderr. All logic lives in :mod:`tradeforge.serve`.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from pathlib import Path

import typer
from rich.markup import escape

from tradeforge.cli.output import console


def serve_cmd(
    config: Path = typer.Argument(..., help="Service YAML (policy, venue, replay, risk, alerts)."),
    host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default 8000)."),
    state: Path | None = typer.Option(
        None, "--state", envvar="TRADEFORGE_STATE_DIR", help="State directory (overrides YAML)."
    ),
    policy: Path | None = typer.Option(None, "--policy", help="Policy artifact (overrides YAML)."),
) -> None:
    """Run the trading service: node, scheduler, API v1, dashboard and /metrics."""
    import os

    from tradeforge.core.config import validate_config
    from tradeforge.monitor.logs import configure_logging, register_secret
    from tradeforge.serve.app import create_app, serve
    from tradeforge.serve.auth import Authenticator
    from tradeforge.serve.config import ApiConfig, load_serve_config
    from tradeforge.serve.runtime import TradingService

    overrides: dict[str, object] = {}
    if state is not None:
        overrides["state_dir"] = str(state.resolve())
    if policy is not None:
        overrides["policy"] = str(policy.resolve())
    cfg = load_serve_config(config, overrides)
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    api = validate_config(ApiConfig, {**cfg.api.model_dump(), **changes}, source="--host/--port")
    key = os.environ.get(api.key_env, "")
    generated = not key
    if generated:
        key = secrets.token_urlsafe(24)
    auth = Authenticator(key, session_ttl_s=api.session_ttl_s)
    root = logging.getLogger()
    for handler in list(root.handlers):  # the CLI's plain handler: the service logs JSON only
        root.removeHandler(handler)
    configure_logging(run_id=uuid.uuid4().hex[:12])
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    register_secret(key)
    service = TradingService(cfg)
    token_file = os.environ.get("TRADEFORGE_METRICS_TOKEN_FILE")
    metrics_token = None
    if token_file:
        metrics_token = Path(token_file).read_text(encoding="utf-8").strip() or None
        if metrics_token:
            register_secret(metrics_token)
    app = create_app(service, auth, metrics_token=metrics_token)
    url = f"http://{api.host}:{api.port}/"
    console.print(f"[bold]tradeforge serve[/] {cfg.mode.upper()} on venue {cfg.venue}: "
                  f"dashboard {escape(url)} (state {escape(cfg.state_dir)})", soft_wrap=True)  # fmt: skip
    if generated:
        console.print(f"${api.key_env} is not set; this run's key (log in with it): "
                      f"[bold]{escape(key)}[/]", soft_wrap=True)  # fmt: skip
    service.start()
    try:
        serve(app, api.host, api.port, graceful_s=api.graceful_shutdown_s)
    finally:
        service.stop()


def register(app: typer.Typer) -> None:
    """Attach ``tradeforge serve`` to the app."""
    app.command("serve")(serve_cmd)


__all__ = ["register", "serve_cmd"]
