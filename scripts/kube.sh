#!/usr/bin/env bash
# A real Kubernetes API server (v1.20.2, built by scripts/build-kube-apiserver) with its etcd, on
# free loopback ports, with TLS and two bearer tokens:
#
#   scripts/kube.sh start DIR     start etcd + kube-apiserver, wait for /readyz, write
#                                 DIR/kubeconfig (admin, system:masters) and
#                                 DIR/kubeconfig-unprivileged (user rivulet-nobody, no roles)
#                                 and DIR/kube.env (the variables below)
#   scripts/kube.sh restart DIR   restart kube-apiserver only (same ports, same etcd)
#   scripts/kube.sh stop DIR      stop both
#
# Like envtest there is no controller-manager, scheduler or kubelet: a Deployment makes no Pods,
# nothing is garbage-collected. RIVULET_KUBE_APISERVER_FLAGS adds flags to kube-apiserver (a test
# turns the watch cache off to see 410 Gone after an etcd compaction).
. "$(dirname "$0")/lib.sh"

stop_pid() {
  local file=$1 pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  kill -CONT "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
}

apiserver() {
  local dir=$1
  . "$dir/kube.env"
  # shellcheck disable=SC2086 # extra flags are words on purpose
  "$(cat "$dir/kube-apiserver.path")" --etcd-servers="$RIVULET_KUBE_ETCD" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$RIVULET_KUBE_PORT" \
    --tls-cert-file="$dir/pki/server.crt" --tls-private-key-file="$dir/pki/server.key" \
    --client-ca-file="$dir/pki/ca.crt" --token-auth-file="$dir/pki/tokens.csv" \
    --service-account-key-file="$dir/pki/sa.pub" --service-account-signing-key-file="$dir/pki/sa.key" \
    --service-account-issuer="https://127.0.0.1:$RIVULET_KUBE_PORT" \
    --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none \
    --authorization-mode=RBAC --allow-privileged=true --disable-admission-plugins=ServiceAccount \
    --cert-dir="$dir/pki/generated" ${RIVULET_KUBE_APISERVER_FLAGS:-} >>"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
  local i pid token
  pid=$(cat "$dir/kube-apiserver.pid")
  token=$(cut -d, -f1 "$dir/pki/tokens.csv" | head -n1)
  for ((i = 0; i < 600; i++)); do
    if curl -fsS -o /dev/null --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token" \
      "https://127.0.0.1:$RIVULET_KUBE_PORT/readyz" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/kube-apiserver.log" >&2; die "kube-apiserver exited during start-up"; }
    sleep 0.1
  done
  die "kube-apiserver was not ready within 60s (log: $dir/kube-apiserver.log)"
}

kubeconfig() {
  local dir=$1 user=$2 token=$3
  cat <<CONFIG
apiVersion: v1
kind: Config
clusters:
- name: rivulet
  cluster:
    server: https://127.0.0.1:$RIVULET_KUBE_PORT
    certificate-authority: $dir/pki/ca.crt
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user@rivulet
  context: {cluster: rivulet, user: $user, namespace: default}
current-context: $user@rivulet
CONFIG
}

start() {
  local dir=$1 bin
  [[ -f $dir/kube.env ]] && die "a Kubernetes API server already runs from $dir"
  bin=$("$RIVULET_ROOT/scripts/build-kube-apiserver")
  command -v etcd >/dev/null || die "etcd is missing (scripts/build-kube-apiserver installs it)"
  mkdir -p "$dir/pki/generated"
  echo "$bin" >"$dir/kube-apiserver.path"

  # A CA, a serving certificate for 127.0.0.1, the service-account key pair, two tokens.
  local pki=$dir/pki
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=rivulet-kube-ca \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/san.ext"
  openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
    -extfile "$pki/san.ext" -out "$pki/server.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  local admin nobody
  admin=$(openssl rand -hex 24); nobody=$(openssl rand -hex 24)
  printf '%s,admin,admin-uid,system:masters\n%s,rivulet-nobody,nobody-uid\n' "$admin" "$nobody" >"$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki/tokens.csv"

  local etcd_port peer_port port
  etcd_port=$(free_port); peer_port=$(free_port); port=$(free_port)
  etcd --data-dir "$dir/etcd" --name rivulet --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "rivulet=http://127.0.0.1:$peer_port" --unsafe-no-fsync >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_for_port "$etcd_port" 30 etcd "$(cat "$dir/etcd.pid")"
  cat >"$dir/kube.env" <<ENV
export RIVULET_KUBE_PORT=$port
export RIVULET_KUBE_ETCD=http://127.0.0.1:$etcd_port
ENV
  apiserver "$dir"
  kubeconfig "$dir" admin "$admin" >"$dir/kubeconfig"
  kubeconfig "$dir" rivulet-nobody "$nobody" >"$dir/kubeconfig-unprivileged"
  chmod 600 "$dir/kubeconfig" "$dir/kubeconfig-unprivileged"
  cat >>"$dir/kube.env" <<ENV
export KUBECONFIG=$dir/kubeconfig
export RIVULET_KUBECONFIG_UNPRIVILEGED=$dir/kubeconfig-unprivileged
export RIVULET_KUBE_DIR=$dir
ENV
  log "Kubernetes API server (v1.20.2) on https://127.0.0.1:$port, etcd on 127.0.0.1:$etcd_port"
}

restart() {
  local dir=$1
  [[ -f $dir/kube.env ]] || die "no Kubernetes API server runs from $dir"
  stop_pid "$dir/kube-apiserver.pid"
  apiserver "$dir"
}

stop() {
  local dir=$1
  stop_pid "$dir/kube-apiserver.pid"
  stop_pid "$dir/etcd.pid"
  rm -f "$dir/kube.env"
}

case ${1:-} in
  start) start "${2:?directory}" ;;
  restart) restart "${2:?directory}" ;;
  stop) stop "${2:?directory}" ;;
  *) die "usage: scripts/kube.sh start|restart|stop DIR" ;;
esac
