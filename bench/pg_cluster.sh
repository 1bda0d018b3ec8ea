#!/usr/bin/env bash
# bench/pg_cluster.sh start <dir> | stop <dir>
#
# A throwaway PostgreSQL cluster for benchmarks, listening on 127.0.0.1 only (a free port)
# and a unix socket in <dir>. `start` prints the libpq conninfo on stdout. PostgreSQL refuses
# to run as root: as root, the cluster runs as Debian's `postgres` user.
set -euo pipefail
cmd=${1:?usage: $0 start|stop <dir>}
dir=${2:?usage: $0 start|stop <dir>}
bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bindir/initdb" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_owner=()
if [ "$(id -u)" -eq 0 ]; then as_owner=(runuser -u postgres --); fi

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
CONF
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null
    "${as_owner[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres molt_bench
    echo "host=127.0.0.1 port=$port user=postgres dbname=molt_bench"
    ;;
  stop)
    [ -d "$dir/data" ] && "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop <dir>" >&2; exit 2 ;;
esac
