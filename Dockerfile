# dhanam-chatops: the Slack ChatOps bot (PRODUCT.md §1).
#
#   docker build -t dhanam-chatops .
#   docker run --rm -p 3000:3000 \
#     -v "$PWD/dhanam.toml:/app/dhanam.toml:ro" \
#     -e SLACK_BOT_TOKEN -e SLACK_SIGNING_SECRET -e REDIS_URL -e AWS_REGION \
#     dhanam-chatops                       # = dhanam-bot serve
#   docker run ... dhanam-chatops socket   # Socket Mode: also pass -e SLACK_APP_TOKEN
#   docker run --rm -v "$PWD/dhanam.toml:/app/dhanam.toml:ro" dhanam-chatops check-config
#
# The config is not baked in: mount it at /app/dhanam.toml (the default DHANAM_CONFIG,
# ./dhanam.toml under WORKDIR /app) or mount it elsewhere and set DHANAM_CONFIG. Secrets come
# from the environment at run time (an orchestrator's secret store); none is set here.
# The image runs as UID/GID 10001 and writes nothing to its filesystem, so it works with a
# read-only root filesystem. The sandbox (`dhanam-bot sandbox`) needs the dev extras and is not
# part of this image; run it from a checkout with `make sandbox`.

# ---- builder: a virtualenv with the pinned runtime dependencies and the project -------------
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY requirements-runtime.lock ./
RUN pip install --no-cache-dir -r requirements-runtime.lock

# Then the project itself, without touching the pinned dependency set.
COPY pyproject.toml README.md ./
COPY bot/ bot/
COPY commands/ commands/
COPY approvals/ approvals/
COPY integrations/ integrations/
COPY core/ core/
# pip byte-compiles what it installs, so the read-only runtime never needs to write .pyc files.
RUN pip install --no-cache-dir --no-deps .

# ---- runtime: the virtualenv only, as a non-root user --------------------------------------
FROM python:3.11-slim-bookworm AS runtime

RUN groupadd --system --gid 10001 dhanam \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin dhanam

COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=3000 \
    LOG_FORMAT=json \
    DHANAM_CONFIG=/app/dhanam.toml

WORKDIR /app
USER 10001:10001

EXPOSE 3000

# 0 when GET /health answers 200 (Redis reachable); urlopen raises on 503 or no answer -> 1.
# Reads PORT at check time, so `-e PORT=8080` moves the check with the server.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3000'), timeout=4)"]

ENTRYPOINT ["dhanam-bot"]
CMD ["serve"]
