# Ephemera portal image: Daphne serving the Django/Channels app. kubesim is never started here.
# Stage 1 bundles the browser assets from the npm lockfile (no CDN at run time).
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN node build.mjs

FROM python:3.11-slim-bookworm
# LOG_FORMAT=json: one JSON object per line for the log collector (plain: LOG_FORMAT=plain).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 EPHEMERA_VAR_DIR=/var/lib/ephemera LOG_FORMAT=json
WORKDIR /app
COPY requirements/base.txt requirements/base.txt
RUN pip install --no-cache-dir -r requirements/base.txt
COPY . .
COPY --from=frontend /src/frontend/build frontend/build
RUN SECRET_KEY=build-only ALLOWED_HOSTS=build python manage.py collectstatic --noinput -v 0 \
 && useradd --system --uid 10001 --home /var/lib/ephemera ephemera \
 && mkdir -p /var/lib/ephemera && chown ephemera /var/lib/ephemera
USER 10001
EXPOSE 8000
# websocket_timeout -1: sessions end by Ephemera's own clock, not Daphne's 24 h default.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket_timeout", "-1", "--proxy-headers", "portal.asgi:application"]
