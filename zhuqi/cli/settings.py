"""The settings every console command runs with: `--config FILE`, then ZHUQI_* variables."""
from __future__ import annotations

import click

from zhuqi.runtime import config as config_module


def load(ctx: click.Context | None = None) -> config_module.Config:
    """Load and validate; a bad setting becomes a one-line error naming it (exit 1)."""
    ctx = ctx or click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    path = root.obj.get("config_path") if root is not None and root.obj else None
    try:
        return config_module.load(path)
    except config_module.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
