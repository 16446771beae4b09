# Ephemera portal image: Daphne serving the Django/Channels app. kubesim is never started here.
# The bases are build arguments: where no registry can be reached, a base made from Debian's own
# packages (debootstrap, imported as an image) can stand in (docs/deploy.md).
ARG NODE_IMAGE=node:20-bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Stage 1 bundles the browser assets from the npm lockfile (no CDN at run time); node and npm
# stay in this stage.
FROM ${NODE_IMAGE} AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
# Behind a TLS-inspecting proxy, give its CA as a build secret (--secret id=ca_bundle,src=FILE):
# used for this download only, never stored in an image layer.
RUN --mount=type=secret,id=ca_bundle \
    if [ -f /run/secrets/ca_bundle ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca_bundle; fi; \
    npm ci --no-audit --no-fund
COPY frontend/ ./
RUN node build.mjs

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG SOURCE=""
LABEL org.opencontainers.image.title="ephemera" \
      org.opencontainers.image.description="Just-in-time Kubernetes debugging in the browser" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}"
# LOG_FORMAT=json: one JSON object per line for the log collector (plain: LOG_FORMAT=plain).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 EPHEMERA_VAR_DIR=/var/lib/ephemera LOG_FORMAT=json
WORKDIR /app
COPY requirements/base.txt requirements/base.txt
RUN --mount=type=secret,id=ca_bundle \
    if [ -f /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    pip install --no-cache-dir -r requirements/base.txt
COPY . .
COPY --from=frontend /src/frontend/build frontend/build
RUN SECRET_KEY=build-only ALLOWED_HOSTS=build python manage.py collectstatic --noinput -v 0 \
 && useradd --system --uid 10001 --home /var/lib/ephemera ephemera \
 && mkdir -p /var/lib/ephemera && chown ephemera /var/lib/ephemera
USER 10001
EXPOSE 8000
# The process answers: /healthz (the same probe the chart's liveness check asks).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# websocket_timeout -1: sessions end by Ephemera's own clock, not Daphne's 24 h default.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket_timeout", "-1", "--proxy-headers", "portal.asgi:application"]
