# syntax=docker/dockerfile:1
# The platform image: one image, one command line, a role per service
# (`ikn migrate`, `ikn ingest`, `ikn api`, `ikn sim`, ...; see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 ikn \
    && useradd --system --uid 10001 --gid ikn --create-home --home-dir /home/ikn ikn

# Only what the wheel is built from (never .env, tests or local data).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ikn ./ikn
COPY ikn_core ./ikn_core
COPY ikn_store ./ikn_store
COPY ingest ./ingest
COPY api ./api
COPY web ./web
COPY edge_agent ./edge_agent
COPY firmware_sim ./firmware_sim
RUN pip install ".[server]" && rm -rf /src
# broker-init and broker-sync run as Mosquitto's uid (1883) and write the broker's
# passwd and acl into the broker-auth volume mounted here: created here, so that a new
# volume mounted on it belongs to that uid (docker-compose.yml).
RUN mkdir -p -m 0700 /broker/auth && chown 1883:1883 /broker/auth

USER ikn
WORKDIR /home/ikn
# The trial profile's volume of simulated devices' logins: created here, so that a new
# volume mounted on it belongs to ikn.
RUN mkdir -m 0700 /home/ikn/trial
EXPOSE 8080
ENTRYPOINT ["ikn"]
CMD ["--help"]
