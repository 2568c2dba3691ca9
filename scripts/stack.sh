#!/usr/bin/env bash
# The local stack: one Tansu broker, one schema registry, one PostgreSQL.
#
#   scripts/stack.sh start RUN_DIR   start everything, write RUN_DIR/env, print the addresses
#   scripts/stack.sh stop RUN_DIR    stop what `start` started
#
# Broker and registry listen on free loopback ports. RIVULET_TANSU=durable uses the durable
# Tansu build with sqlite storage in RUN_DIR (no transactions) instead of the memory one;
# RIVULET_PROFILE=release runs release builds (benchmarks); RIVULET_KUBE=1 also starts a real
# Kubernetes API server with its etcd (scripts/kube.sh) and puts KUBECONFIG in RUN_DIR/env.
. "$(dirname "$0")/lib.sh"

start() {
  local run_dir=$1
  mkdir -p "$run_dir"
  [[ -f $run_dir/env ]] && die "a stack already runs from $run_dir (scripts/stack.sh stop $run_dir)"

  local tansu storage kafka_port
  if [[ ${RIVULET_TANSU:-memory} == durable ]]; then
    # Tansu reads the sqlite path relative to its working directory: it runs in $run_dir.
    tansu=$(tansu_durable_bin); storage="sqlite://tansu.db"
  else
    tansu=$(tansu_bin); storage="memory://tansu/"
  fi
  kafka_port=$(free_port)
  (cd "$run_dir" && exec "$tansu" broker --listener-url "tcp://127.0.0.1:$kafka_port" \
    --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
    --storage-engine "$storage" >"$run_dir/tansu.log" 2>&1) &
  echo $! >"$run_dir/tansu.pid"
  wait_for_port "$kafka_port" 30 "Tansu" "$(cat "$run_dir/tansu.pid")"
  log "Tansu on 127.0.0.1:$kafka_port ($storage)"

  local profile=${RIVULET_PROFILE:-debug} flags=()
  [[ $profile == release ]] && flags=(--release)
  log "Building the schema registry ($profile)"
  cargo build --quiet "${flags[@]}" --manifest-path "$RIVULET_ROOT/Cargo.toml" -p rivulet-schema-registry --bin schema-registry
  local registry_port
  registry_port=$(free_port)
  KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$kafka_port" KAFKA_PROFILE=test \
    "$CARGO_TARGET_DIR/$profile/schema-registry" serve --listen "127.0.0.1:$registry_port" \
    >"$run_dir/schema-registry.log" 2>&1 &
  echo $! >"$run_dir/schema-registry.pid"
  wait_for_http "http://127.0.0.1:$registry_port/readyz" 60 "schema registry" "$(cat "$run_dir/schema-registry.pid")"
  log "Schema registry on http://127.0.0.1:$registry_port"

  local database_url
  database_url=$(postgres_url "$run_dir")
  log "PostgreSQL at $database_url"

  cat >"$run_dir/env" <<ENV
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$kafka_port
export SCHEMA_REGISTRY_URL=http://127.0.0.1:$registry_port
export DATABASE_URL=$database_url
export KAFKA_PROFILE=test
export RIVULET_BROKER_PID=$(cat "$run_dir/tansu.pid")
ENV
  if [[ ${RIVULET_KUBE:-0} == 1 ]]; then
    "$RIVULET_ROOT/scripts/kube.sh" start "$run_dir/kube"
    cat "$run_dir/kube/kube.env" >>"$run_dir/env"
  fi
}

stop() {
  local run_dir=$1 name pid
  for name in fleet-manager strimzi-standin consumer-autoscaler k8s-monitor recommendation-producer prometheus summary-stats-ui backend schema-registry tansu; do
    if [[ -f $run_dir/$name.pid ]]; then
      pid=$(cat "$run_dir/$name.pid")
      kill -CONT "$pid" 2>/dev/null || true
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$run_dir/$name.pid"
    fi
  done
  if [[ -f $run_dir/pg.datadir ]]; then
    local bindir as=()
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    [[ $(id -u) == 0 ]] && as=(runuser -u postgres --)
    "${as[@]}" "$bindir/pg_ctl" -D "$(cat "$run_dir/pg.datadir")" -m fast stop >/dev/null 2>&1 || true
    rm -f "$run_dir/pg.datadir"
  fi
  [[ -d $run_dir/kube ]] && "$RIVULET_ROOT/scripts/kube.sh" stop "$run_dir/kube"
  rm -f "$run_dir/env"
}

case ${1:-} in
  start) start "${2:?run directory}" ;;
  stop) stop "${2:?run directory}" ;;
  *) die "usage: scripts/stack.sh start|stop RUN_DIR" ;;
esac
