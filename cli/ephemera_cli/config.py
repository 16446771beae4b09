"""Where the portal's URL and the API token live: one JSON file only its owner can read.

`$XDG_CONFIG_HOME/ephemera/config.json` (default `~/.config/ephemera/config.json`), mode 0600
in a 0700 directory, written atomically so a crash never leaves half a token. EPHEMERA_URL and
EPHEMERA_TOKEN override the file (CI jobs, containers), so a token need not touch the disk.
"""

from __future__ import annotations

import ipaddress
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ephemera_cli.errors import CliError, Exit

LOGIN_HINT = "kubectl ephemera login URL --token TOKEN"


@dataclass(frozen=True)
class Config:
    url: str
    token: str

    def __post_init__(self) -> None:
        # It goes into an HTTP header: printable ASCII without spaces, or nothing at all.
        if self.token and not all(0x21 <= ord(c) <= 0x7E for c in self.token):
            raise CliError(f"that is not an API token (spaces or odd characters in it); {LOGIN_HINT}", Exit.USAGE)


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    # The XDG spec says a relative value is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "ephemera" / "config.json"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_url(raw: str, *, allow_http: bool = False) -> str:
    """The portal's base URL (scheme://host[:port][/prefix], no trailing slash).

    Plain http sends the bearer token in the clear, so it is refused except to this machine
    (the demo) or when asked for explicitly.
    """
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"{raw!r} is not a portal URL; give one like https://ephemera.example.com", Exit.USAGE)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise CliError("the portal URL must not carry credentials, a query or a fragment; give scheme://host[:port]", Exit.USAGE)
    if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        raise CliError(
            f"http://{parts.netloc} would send your token unencrypted; use https:// (or --allow-http if you really mean it)",
            Exit.USAGE,
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def save(config: Config, path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkdir's mode is masked by the umask and ignored for an existing directory: say it again.
    os.chmod(path.parent, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"url": config.url, "token": config.token}, f)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_file(path: Path) -> dict[str, str]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    # Like ssh with a private key: a token others can read (or a file someone else planted)
    # is not used, so the mistake is noticed instead of quietly living on.
    if st.st_uid != os.getuid():
        raise CliError(f"{path} belongs to another user; remove it and log in again ({LOGIN_HINT})", Exit.AUTH)
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CliError(f"{path} is readable by others; run: chmod 600 {path} (and consider replacing the token)", Exit.AUTH)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"can't read {path} ({exc}); log in again: {LOGIN_HINT}", Exit.AUTH) from None
    if not isinstance(data, dict):
        raise CliError(f"{path} is not a config object; log in again: {LOGIN_HINT}", Exit.AUTH)
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def load() -> Config:
    """The URL and token to use, or an AUTH error saying how to log in."""
    env_url = os.environ.get("EPHEMERA_URL", "").strip()
    env_token = os.environ.get("EPHEMERA_TOKEN", "").strip()
    stored = {} if env_url and env_token else _read_file(config_path())
    url = env_url or stored.get("url", "")
    token = env_token or stored.get("token", "")
    if not url or not token:
        raise CliError(f"not logged in; run: {LOGIN_HINT}", Exit.AUTH)
    # A URL from the environment gets the same check as one given to login; a stored one passed it.
    return Config(url=normalize_url(url, allow_http=True) if not env_url else normalize_url(url), token=token)
