#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are up for the test suite,
# and Chromium is installed for its browser tests: start what is installed but stopped, install
# from Debian's packages what is missing.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  if [ -z "${_APT_UPDATED:-}" ]; then as_root apt-get update -qq; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! postgres_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services: installing PostgreSQL"
    apt_install postgresql postgresql-contrib
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf=/etc/postgresql/$version/main
  # The suite connects as postgres over TCP without a password, as on the CI machines.
  if ! grep -q "tillbook-trust" "$conf/pg_hba.conf"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust # tillbook-trust\nhost all all ::1/128 trust # tillbook-trust' "$conf/pg_hba.conf"
  fi
  echo "services: starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  # If the package's install step had already started it, the trust lines need a reload.
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  for _ in $(seq 1 30); do postgres_up && break; sleep 1; done
  postgres_up || { echo "services: PostgreSQL did not start" >&2; exit 1; }
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE test"

if ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "services: installing Redis"
    apt_install redis-server
  fi
  echo "services: starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
  redis_up || { echo "services: Redis did not start" >&2; exit 1; }
fi
# The browser tests drive Debian's Chromium through Playwright (no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  echo "services: installing Chromium for the browser tests"
  apt_install chromium
fi
if ! command -v hledger >/dev/null 2>&1; then
  # The books' export test reads the exported journal with an independent double-entry tool.
  echo "services: installing hledger for the journal export test"
  apt_install hledger
fi
echo "services: PostgreSQL and Redis are up; Chromium and hledger are installed"
