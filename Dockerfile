# syntax=docker/dockerfile:1
# liveclass server image.
#   docker build -t liveclass .
#   docker run -p 8080:8080 -v liveclass-data:/data -e LIVECLASS_SECRETS=k1:change-me liveclass

# ---------------------------------------------------------------- builder
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /app
# Dependencies first (cached layer), verified against the hashes in the lock.
COPY requirements-runtime.lock ./
RUN pip install --require-hashes -r requirements-runtime.lock

# Then the project itself (see .dockerignore for what is left out).
COPY . .
RUN pip install --no-deps . \
    && pip check

# ---------------------------------------------------------------- runtime
FROM python:3.11-slim-bookworm

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system liveclass \
    && useradd --system --gid liveclass --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin liveclass \
    && mkdir -p /data \
    && chown liveclass:liveclass /data \
    && chmod 0700 /data

COPY --from=builder /opt/venv /opt/venv
# The app tree, incl. clients/web (static web client), for anything resolved relative to /app.
COPY --from=builder /app /app
WORKDIR /app

USER liveclass
EXPOSE 8080
VOLUME /data

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"

# SIGTERM (docker stop) makes the server tell clients to reconnect, then exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["liveclass", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
