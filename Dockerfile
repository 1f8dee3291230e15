# The gateway as a container: `docker build -t support-gateway .`, then see
# compose.yaml (PostgreSQL, two gateways, a proxy) and README's Production section.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_HEALTH_URL=http://127.0.0.1:8080/healthz

WORKDIR /opt/gateway
# the exact versions CI tested, with their hashes, before the code: a code change
# rebuilds only the last layers
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY handlers ./handlers
COPY storage ./storage
COPY sandbox ./sandbox
RUN pip install --no-deps . \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/gateway --create-home gateway

USER 10001:10001
WORKDIR /var/lib/gateway
EXPOSE 8080
# /healthz answers while the process serves; /readyz (the proxy's check) also says
# whether its database and platforms answer
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(os.environ['GATEWAY_HEALTH_URL'], timeout=4).status != 200)"]
# SIGTERM: stop taking work, finish what is in flight, hand the roles over
STOPSIGNAL SIGTERM
ENTRYPOINT ["gateway"]
CMD ["run", "--config", "/etc/gateway/config.toml"]
