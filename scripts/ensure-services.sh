#!/usr/bin/env bash
# Make sure PostgreSQL, RabbitMQ and a Docker engine answer before the tests start.
# Uses running services; otherwise installs them from Debian packages and starts them.
# Exits non-zero naming the service that could not be started and why.
set -uo pipefail

log() { printf 'ensure-services: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

PG_HOST=${CATALOG_TEST_PG_HOST:-127.0.0.1}
PG_PORT=${CATALOG_TEST_PG_PORT:-5432}
AMQP_HOST=${CATALOG_TEST_AMQP_HOST:-127.0.0.1}
AMQP_PORT=${CATALOG_TEST_AMQP_PORT:-5672}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/catalog-dockerd.log}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

apt_updated=
apt_install() {
  [ "$(id -u)" = 0 ] || fail "$* is missing and installing it needs root"
  if [ -z "$apt_updated" ]; then
    apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed; trying the cached lists"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

ensure_postgres() {
  port_open "$PG_HOST" "$PG_PORT" && return 0
  log "PostgreSQL does not answer on $PG_HOST:$PG_PORT; starting it"
  command -v pg_ctlcluster >/dev/null || apt_install postgresql || fail "PostgreSQL: apt-get install postgresql failed"
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || fail "PostgreSQL: no cluster under /etc/postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  wait_for 30 postgres port_open "$PG_HOST" "$PG_PORT" \
    || fail "PostgreSQL: still not answering on $PG_HOST:$PG_PORT after 30 s (see /var/log/postgresql)"
}

ensure_rabbitmq() {
  port_open "$AMQP_HOST" "$AMQP_PORT" && return 0
  log "RabbitMQ does not answer on $AMQP_HOST:$AMQP_PORT; starting it"
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server || fail "RabbitMQ: apt-get install rabbitmq-server failed"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for 90 rabbitmq port_open "$AMQP_HOST" "$AMQP_PORT" \
    || fail "RabbitMQ: still not answering on $AMQP_HOST:$AMQP_PORT after 90 s (see /var/log/rabbitmq)"
}

docker_answers() { docker info >/dev/null 2>&1; }

ensure_docker() {
  if [ -n "${DOCKER_HOST:-}" ]; then
    docker_answers || fail "Docker: DOCKER_HOST=$DOCKER_HOST does not answer"
    return 0
  fi
  docker_answers && return 0
  log "no Docker engine answers; starting dockerd"
  if ! command -v dockerd >/dev/null; then
    apt_install docker.io || fail "Docker: apt-get install docker.io failed"
  fi
  command -v docker >/dev/null || fail "Docker: the docker client is missing after installing docker.io"
  if ! pgrep -x dockerd >/dev/null; then
    rm -f /var/run/docker.pid  # stale after a killed session
    nohup dockerd >"$DOCKERD_LOG" 2>&1 &
  fi
  wait_for 60 docker docker_answers \
    || fail "Docker: dockerd did not answer within 60 s; last lines of $DOCKERD_LOG:
$(tail -n 15 "$DOCKERD_LOG" 2>/dev/null)"
}

# Debian's docker-compose (1.x): the tests check the project's compose file with it and the
# deploy benchmark compares against `docker-compose up -d`.
ensure_compose() {
  command -v docker-compose >/dev/null && return 0
  apt_install docker-compose || fail "docker-compose: apt-get install docker-compose failed"
}

ensure_postgres
ensure_rabbitmq
ensure_docker
ensure_compose
log "PostgreSQL, RabbitMQ and Docker answer"
