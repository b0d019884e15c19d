#!/usr/bin/env bash
# Throwaway PostgreSQL and MariaDB servers for the adapter and query tests.
#
#   ops/testdb.sh start DIR   install (Debian packages) if absent, start both servers
#                             with data in DIR on free loopback ports, create the test
#                             database and user, and write DIR/env with
#                             YIWANG_TEST_PG_URL and YIWANG_TEST_MYSQL_URL
#   ops/testdb.sh stop DIR    stop both servers (the data stays in DIR)
#
# Servers listen on 127.0.0.1 only. Fails loudly when something cannot be installed or
# started; it never pretends.
set -euo pipefail

die() { printf 'testdb: %s\n' "$*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found: install $* yourself"
    echo "testdb: installing $* (Debian packages)" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/tmp/testdb-apt.log 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/tmp/testdb-apt.log 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>/tmp/testdb-apt.log 2>&1 \
            || { tail -20 /tmp/testdb-apt.log >&2; die "cannot install $*"; }
    fi
}

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

# PostgreSQL refuses to run as root: run it as the 'postgres' system user then.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_pg() {
    local dir=$1 bindir port
    bindir=$(pg_bindir) || true
    if [ -z "$bindir" ]; then
        apt_install postgresql
        bindir=$(pg_bindir) || die "PostgreSQL installed but initdb not found"
    fi
    port=$(free_port)
    mkdir -p "$dir/pg"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir/pg"
    if [ ! -f "$dir/pg/data/PG_VERSION" ]; then
        as_pg "$bindir/initdb" -D "$dir/pg/data" -U yiwang --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 \
            || { cat "$dir/pg/initdb.log" >&2; die "initdb failed"; }
    fi
    as_pg "$bindir/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 \
        -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
        || { tail -20 "$dir/pg/server.log" >&2; die "PostgreSQL did not start"; }
    as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U yiwang -d postgres -qAt \
        -c "SELECT 1 FROM pg_database WHERE datname='yiwang_test'" | grep -q 1 \
        || as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U yiwang yiwang_test
    echo "export YIWANG_TEST_PG_URL=postgres://yiwang@127.0.0.1:$port/yiwang_test"
}

start_mysql() {
    local dir=$1 port
    command -v mariadbd >/dev/null || apt_install mariadb-server
    command -v mariadbd >/dev/null || die "MariaDB installed but mariadbd not found"
    port=$(free_port)
    mkdir -p "$dir/my"
    if [ ! -d "$dir/my/data/mysql" ]; then
        mariadb-install-db --no-defaults --datadir="$dir/my/data" --user="$(id -un)" \
            --auth-root-authentication-method=socket --skip-test-db >"$dir/my/install.log" 2>&1 \
            || { cat "$dir/my/install.log" >&2; die "mariadb-install-db failed"; }
    fi
    mariadbd --no-defaults --datadir="$dir/my/data" --port="$port" --bind-address=127.0.0.1 \
        --socket="$dir/my/mysqld.sock" --pid-file="$dir/my/mysqld.pid" --user="$(id -un)" \
        --skip-name-resolve --innodb-flush-log-at-trx-commit=0 --character-set-server=utf8mb4 \
        >"$dir/my/server.log" 2>&1 &
    local i
    for i in $(seq 300); do
        mariadb --no-defaults --socket="$dir/my/mysqld.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    mariadb --no-defaults --socket="$dir/my/mysqld.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 \
        || { tail -20 "$dir/my/server.log" >&2; die "MariaDB did not start"; }
    mariadb --no-defaults --socket="$dir/my/mysqld.sock" -uroot -e "
        CREATE DATABASE IF NOT EXISTS yiwang_test CHARACTER SET utf8mb4;
        CREATE USER IF NOT EXISTS 'yiwang'@'127.0.0.1' IDENTIFIED BY 'yiwang-test';
        GRANT ALL ON yiwang_test.* TO 'yiwang'@'127.0.0.1';" \
        || die "cannot create the MariaDB test database"
    echo "export YIWANG_TEST_MYSQL_URL=mysql://yiwang:yiwang-test@127.0.0.1:$port/yiwang_test"
}

stop_all() {
    local dir=$1 bindir
    if [ -f "$dir/pg/data/postmaster.pid" ] && bindir=$(pg_bindir); then
        as_pg "$bindir/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/my/mysqld.pid" ]; then
        local pid
        pid=$(cat "$dir/my/mysqld.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
}

case "${1:-}" in
start)
    [ $# -eq 2 ] || die "usage: ops/testdb.sh start DIR"
    mkdir -p "$2"; dir=$(cd "$2" && pwd)
    chmod 755 "$dir"
    { start_pg "$dir"; start_mysql "$dir"; } >"$dir/env"
    cat "$dir/env"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: ops/testdb.sh stop DIR"
    stop_all "$2"
    ;;
*) die "usage: ops/testdb.sh start|stop DIR" ;;
esac
