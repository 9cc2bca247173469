#!/usr/bin/env bash
# Local Redis topologies for the redisstore tests, from the installed redis-server and
# redis-cli, on loopback only:
#
#   Cluster   3 masters + 3 replicas on 127.0.0.1:17000-17005 (cluster bus: 27000-27005)
#   Sentinel  master 127.0.0.1:17100, replica 127.0.0.1:17101, and 3 sentinels on
#             127.0.0.1:17200-17202 watching it as "apikeys-test" (quorum 2, down after 1 s,
#             failover timeout 5 s); the two run with min-replicas-to-write 1
#
# Usage: scripts/redis-topologies.sh start|stop|status|env
#
#   start   starts both (a no-op when they already run and answer; a half-started or dead set
#           is stopped and started again) and waits, bounded, until the cluster reports
#           cluster_state:ok with every replica in sync and the sentinels agree on the master
#   stop    stops every process the script started and removes its directory
#   status  says whether both answer (exit 0) or not (exit 1)
#   env     prints the test settings, for:  eval "$(scripts/redis-topologies.sh env)"
#             export APIKEYS_TEST_REDIS_CLUSTER='127.0.0.1:17000,...,127.0.0.1:17005'
#             export APIKEYS_TEST_REDIS_SENTINEL='redis://127.0.0.1:17200?master_name=apikeys-test&addr=...'
#           (the second is a go-redis failover URL: the sentinels' addresses and the master
#           name, see redis.ParseFailoverURL); it fails when the topologies do not answer
#
# Everything lives in one directory, $APIKEYS_REDIS_TOPOLOGIES_DIR (default
# ${TMPDIR:-/tmp}/apikeys-redis-topologies-<uid>): configurations, logs, pid files, cluster
# state. Nothing is persisted (no RDB, no AOF). The servers daemonize and write pid files
# there; stop kills exactly those pids. Messages go to stderr.
set -euo pipefail

DIR=${APIKEYS_REDIS_TOPOLOGIES_DIR:-${TMPDIR:-/tmp}/apikeys-redis-topologies-$(id -u)}
MARKER=.apikeys-redis-topologies # proves that DIR is ours before stop removes it
HOST=127.0.0.1
CLUSTER_PORTS=(17000 17001 17002 17003 17004 17005)
MASTER_PORT=17100
REPLICA_PORT=17101
SENTINEL_PORTS=(17200 17201 17202)
MASTER_NAME=apikeys-test

say() { echo "redis-topologies: $*" >&2; }
die() {
  say "$*"
  exit 1
}

cli() { timeout 5 redis-cli -h "$HOST" -p "$1" "${@:2}" 2>/dev/null; }
answers() { [ "$(cli "$1" ping)" = PONG ]; }

# every_port lists every TCP port the topologies listen on.
every_port() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do echo "$p" $((p + 10000)); done
  echo "$MASTER_PORT" "$REPLICA_PORT" "${SENTINEL_PORTS[@]}"
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# wait_until CMD...: runs CMD every 0.2 s until it succeeds, for at most 60 s.
wait_until() {
  local i
  for i in $(seq 1 300); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  return 1
}

cluster_ok() {
  local p info
  for p in "${CLUSTER_PORTS[@]}"; do
    info=$(cli "$p" cluster info) || return 1
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    grep -q '^cluster_known_nodes:6' <<<"$info" || return 1
  done
  # Every master has its replica, and every replica is in sync (what a manual failover
  # needs).
  for p in "${CLUSTER_PORTS[@]}"; do
    info=$(cli "$p" info replication) || return 1
    if grep -q '^role:master' <<<"$info"; then
      grep -q '^connected_slaves:1' <<<"$info" || return 1
    else
      grep -q '^master_link_status:up' <<<"$info" || return 1
    fi
  done
  [ "$(cli "${CLUSTER_PORTS[0]}" cluster nodes | grep -c 'master')" = 3 ] || return 1
}

# sentinel_ok: the sentinels agree on a master that answers as a master, with its replica
# in sync, and each sentinel knows the replica and the other two sentinels.
sentinel_ok() {
  local p addr first="" info
  for p in "${SENTINEL_PORTS[@]}"; do
    addr=$(cli "$p" sentinel get-master-addr-by-name "$MASTER_NAME" | paste -sd:) || return 1
    [ -n "$addr" ] || return 1
    if [ -z "$first" ]; then first=$addr; fi
    [ "$addr" = "$first" ] || return 1
    info=$(cli "$p" sentinel master "$MASTER_NAME" | paste -sd' ') || return 1
    grep -q 'flags master link-' <<<"$info" || return 1 # no s_down, no failover in progress
    grep -q 'num-slaves 1 ' <<<"$info" || return 1
    grep -q 'num-other-sentinels 2 ' <<<"$info" || return 1
  done
  info=$(cli "${first##*:}" info replication) || return 1
  grep -q '^role:master' <<<"$info" && grep -q '^connected_slaves:1' <<<"$info" || return 1
  grep -q 'state=online' <<<"$info" || return 1
}

# pids_alive: every pid file names a live process.
pids_alive() {
  local f n=0
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || return 1
    kill -0 "$(cat "$f")" 2>/dev/null || return 1
    n=$((n + 1))
  done
  [ "$n" = 11 ]
}

replica_synced() { cli "$REPLICA_PORT" info replication | grep -q '^master_link_status:up'; }

# running: everything started answers, and the cluster serves all its slots. (Not more: a
# failover test may be moving the masters.)
running() {
  local p
  [ -e "$DIR/$MARKER" ] && [ -e "$DIR/started" ] && pids_alive || return 1
  for p in "${CLUSTER_PORTS[@]}" "$MASTER_PORT" "$REPLICA_PORT" "${SENTINEL_PORTS[@]}"; do
    answers "$p" || return 1
  done
  cli "${CLUSTER_PORTS[0]}" cluster info | grep -q '^cluster_state:ok'
}

# server NAME PORT [EXTRA CONFIG LINES...]: writes NAME.conf and starts a daemonized
# redis-server on it.
server() {
  local name=$1 port=$2
  shift 2
  mkdir -p "$DIR/$name"
  {
    echo "port $port"
    echo "bind $HOST"
    echo "daemonize yes"
    echo "pidfile $DIR/$name.pid"
    echo "logfile $DIR/$name.log"
    echo "dir $DIR/$name"
    echo 'save ""'
    echo "appendonly no"
    printf '%s\n' "$@"
  } >"$DIR/$name.conf"
}

start() {
  if running; then
    say "already running (in $DIR)"
    return 0
  fi
  if [ -e "$DIR" ]; then
    say "found a stopped or half-started set in $DIR; stopping it first"
    stop
  fi
  local p busy=()
  for p in $(every_port); do
    if port_in_use "$p"; then busy+=("$p"); fi
  done
  if [ "${#busy[@]}" -gt 0 ]; then
    die "port(s) ${busy[*]} on $HOST are in use by something this script did not start; free them (or stop that process) and retry"
  fi
  command -v redis-server >/dev/null || die "redis-server is not installed"
  command -v redis-cli >/dev/null || die "redis-cli is not installed"

  mkdir -p "$DIR"
  touch "$DIR/$MARKER"
  say "starting in $DIR"

  for p in "${CLUSTER_PORTS[@]}"; do
    server "cluster-$p" "$p" "cluster-enabled yes" "cluster-config-file nodes.conf" \
      "cluster-node-timeout 2000"
  done
  # Both refuse writes while they are a master without a replica in sync (min-replicas-*):
  # SENTINEL FAILOVER does not pause the old master, which would otherwise go on
  # acknowledging writes after its replica was promoted, and lose them when it becomes a
  # replica itself (see redisstore/failover_test.go).
  local safe=("min-replicas-to-write 1" "min-replicas-max-lag 10")
  server master "$MASTER_PORT" "${safe[@]}"
  server replica "$REPLICA_PORT" "replicaof $HOST $MASTER_PORT" "${safe[@]}"
  for p in "${SENTINEL_PORTS[@]}"; do
    mkdir -p "$DIR/sentinel-$p"
    # Sentinel rewrites its configuration file: it is in DIR too.
    cat >"$DIR/sentinel-$p.conf" <<EOF
port $p
bind $HOST
daemonize yes
pidfile $DIR/sentinel-$p.pid
logfile $DIR/sentinel-$p.log
dir $DIR/sentinel-$p
sentinel monitor $MASTER_NAME $HOST $MASTER_PORT 2
sentinel down-after-milliseconds $MASTER_NAME 1000
sentinel failover-timeout $MASTER_NAME 5000
sentinel parallel-syncs $MASTER_NAME 1
EOF
  done

  for p in "${CLUSTER_PORTS[@]}"; do redis-server "$DIR/cluster-$p.conf"; done
  redis-server "$DIR/master.conf"
  redis-server "$DIR/replica.conf"
  for p in "${CLUSTER_PORTS[@]}" "$MASTER_PORT" "$REPLICA_PORT"; do
    wait_until answers "$p" || die "redis-server on port $p did not answer; see $DIR/*.log"
  done

  local nodes=()
  for p in "${CLUSTER_PORTS[@]}"; do nodes+=("$HOST:$p"); done
  if ! timeout 60 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
    >"$DIR/cluster-create.log" 2>&1; then
    cat "$DIR/cluster-create.log" >&2
    die "redis-cli --cluster create failed"
  fi
  wait_until cluster_ok || die "the cluster did not reach cluster_state:ok with its replicas in sync within 60 s; see $DIR/*.log"

  # The sentinels start once the replica is in sync, so that they find it at once.
  wait_until replica_synced ||
    die "the replica on port $REPLICA_PORT did not sync; see $DIR/replica.log"
  for p in "${SENTINEL_PORTS[@]}"; do redis-server "$DIR/sentinel-$p.conf" --sentinel; done
  for p in "${SENTINEL_PORTS[@]}"; do
    wait_until answers "$p" || die "sentinel on port $p did not answer; see $DIR/sentinel-$p.log"
  done
  wait_until sentinel_ok || die "the sentinels did not agree on the master and its replica within 60 s; see $DIR/sentinel-*.log"

  touch "$DIR/started"
  say "running: cluster on $HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[5]}, sentinels on $HOST:${SENTINEL_PORTS[0]}-${SENTINEL_PORTS[2]} (master name $MASTER_NAME)"
}

# is_redis PID: the process is a redis-server (sentinels included), so that a reused pid
# is never killed.
is_redis() { grep -q redis-server "/proc/$1/cmdline" 2>/dev/null || [ "$(ps -o comm= -p "$1" 2>/dev/null)" = redis-server ]; }

stop() {
  if [ ! -e "$DIR" ]; then
    say "not running"
    return 0
  fi
  [ -e "$DIR/$MARKER" ] || die "$DIR was not made by this script; not touching it"
  local f pid pids=()
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null && is_redis "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do
    local i
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid did not stop on SIGTERM within 5 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$DIR"
  say "stopped ${#pids[@]} processes and removed $DIR"
}

env_lines() {
  running || die "the topologies are not running; start them with: $0 start"
  local p cluster=() sentinel
  for p in "${CLUSTER_PORTS[@]}"; do cluster+=("$HOST:$p"); done
  sentinel="redis://$HOST:${SENTINEL_PORTS[0]}?master_name=$MASTER_NAME"
  for p in "${SENTINEL_PORTS[@]:1}"; do sentinel+="&addr=$HOST:$p"; done
  echo "export APIKEYS_TEST_REDIS_CLUSTER='$(
    IFS=,
    echo "${cluster[*]}"
  )'"
  echo "export APIKEYS_TEST_REDIS_SENTINEL='$sentinel'"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
  if running; then
    say "running (in $DIR)"
  else
    say "not running"
    exit 1
  fi
  ;;
env) env_lines ;;
*)
  echo "usage: $0 start|stop|status|env" >&2
  exit 2
  ;;
esac
