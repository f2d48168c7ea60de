"""Runtime settings: every environment variable starts with SIYU_."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All of siyu's knobs, read from the environment (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./var/siyu.db"
    redis_url: str | None = None
    var_dir: Path = Path("./var")
    secret_key: str | None = None
    # Cookies are Secure by default; browsers treat http://localhost as a secure origin.
    cookie_secure: bool = True
    session_hours: int = 12
    login_max_failures: int = 5
    login_window_minutes: int = 15
    max_body_bytes: int = 2 * 1024 * 1024
    # Contact imports upload whole files: their routes alone take bodies up to this size.
    import_max_bytes: int = 50 * 1024 * 1024
    import_max_rows: int = 1_000_000
    # A poster template's background image (PNG or JPEG) may be this large; its upload routes take
    # bodies of twice that, so a too large image is refused on its field rather than by the body limit.
    poster_max_bytes: int = 10 * 1024 * 1024
    # Move the built app's objects out of the cyclic GC's reach (gc.freeze), so collections during a
    # request walk only that request's objects, not the whole heap.
    gc_freeze: bool = True
    # Where people reach this server from outside: tracked short links are <public_url>/l/<code>.
    public_url: str = "http://localhost:8000"
    worker_lease_seconds: int = 60
    worker_batch_size: int = 20
    worker_poll_seconds: float = 1.0
    # Comma-separated modules the worker imports so their job handlers register (plugins, tests).
    job_modules: str = ""
    # Named fault points for crash tests, e.g. "jobs.after_external:3" (SIGKILL at the 3rd hit).
    faults: str = ""
    # Shifts the system clock; lets a crash test age leases without sleeping.
    clock_offset_seconds: float = 0.0
    # Path of WeCom's chat-archive SDK (libWeWorkFinanceSdk_C.so) when accounts don't name their own.
    wecom_finance_sdk: str | None = None

    @property
    def poster_body_max_bytes(self) -> int:
        """The body limit of poster template uploads (see poster_max_bytes)."""
        return 2 * self.poster_max_bytes + 64 * 1024

    def resolved_secret_key(self) -> str:
        """The signing secret: configured, or generated once and kept under var/."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cleared by tests that change the environment)."""
    return Settings()
