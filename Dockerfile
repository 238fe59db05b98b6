# factflow: the server (`factflow serve`, the default command) and the Bytewax worker
# (`python -m bytewax.run factflow.flow`) in one slim image.
#
#   docker build -t factflow .                       # server + workers, broker clients
#   docker build -t factflow:browser --target browser .   # + Debian's Chromium for web_crawler
#
# Targets: `runtime` (the default) and `browser`. Postgres, the broker and S3 run beside the container
# (deploy/k8s/ shows one way); see README "Running in containers".

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with factflow and the clients of the chosen extras -------------
FROM ${PYTHON_IMAGE} AS build
# the optional providers' clients; `embeddings` (torch) is left out to keep the image small
ARG EXTRAS=rabbitmq,stomp,pulsar,kafka,s3,llm
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY factflow ./factflow
# tests/unit/test_deploy.py runs this install in a clean virtualenv
RUN python -m venv /opt/factflow && /opt/factflow/bin/pip install ".[${EXTRAS}]"

# --- runtime: the virtualenv, the shipped pipelines, a non-root user --------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 factflow \
    && useradd --system --uid 10001 --gid factflow --home-dir /app --create-home factflow \
    && mkdir -p /data \
    && chown factflow:factflow /data
COPY --from=build /opt/factflow /opt/factflow
COPY --chown=factflow:factflow pipelines /app/pipelines
ENV PATH=/opt/factflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FACTFLOW_ENVIRONMENT=production \
    FACTFLOW_DATA_DIR=/data/server \
    FACTFLOW_RECOVERY_DIR=/data/recovery \
    FACTFLOW_PIPELINES_DIR=/app/pipelines \
    FACTFLOW_LOG_FORMAT=json
WORKDIR /app
USER 10001
VOLUME ["/data"]
EXPOSE 8000 9100
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/system/health', timeout=4)"]
# FACTFLOW_DATABASE_URL and FACTFLOW_AUTH_SECRET are required (production settings).
# A worker process instead: `python -m bytewax.run factflow.flow -i N -a "host:port;..."`
# with FACTFLOW_PLAN or FACTFLOW_PIPELINE (deploy/k8s/workers.yaml).
CMD ["factflow", "serve", "--host", "0.0.0.0", "--port", "8000"]

# --- browser: the runtime plus Debian's Chromium and Playwright for web_crawler ---------
FROM runtime AS browser
USER 0
# Debian's current Chromium (security updates matter more than a pinned version)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation \
    && rm -rf /var/lib/apt/lists/*
RUN /opt/factflow/bin/pip install --no-cache-dir "playwright>=1.40"
ENV FACTFLOW_CHROMIUM=/usr/bin/chromium
USER 10001

# the default target: `docker build .` builds the server image without Chromium
FROM runtime
