#!/usr/bin/env bash
# Interop suite: posthaste against real squid, tinyproxy, dante, nginx and mitmproxy on 127.0.0.1.
#
#   bash scripts/interop.sh [extra test-runner arguments, e.g. --nocapture]
#
# Installs what is missing (Debian: squid, tinyproxy, dante-server, nginx, openssl; PyPI:
# mitmproxy, standardwebhooks), starts a receiver that checks every webhook with the
# `standardwebhooks` verifier, makes a CA, server and client certificates with openssl, creates
# the system user dante authenticates (posthaste-socks), writes every config under a temporary
# directory, starts
# the servers on free loopback ports, runs `cargo test --test interop -- --ignored`, and stops
# every server it started, also on failure or interruption. Needs root: for apt-get when
# something must be installed, and for the user dante checks passwords against. Nothing leaves
# the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[interop] %s\n' "$*"; }
need_root() { if [ "$(id -u)" -ne 0 ]; then log "needs root to install $*"; exit 1; fi; }

# --- install ---------------------------------------------------------------------------------
missing=()
command -v squid >/dev/null 2>&1 || [ -x /usr/sbin/squid ] || missing+=(squid)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || missing+=(tinyproxy)
command -v danted >/dev/null 2>&1 || [ -x /usr/sbin/danted ] || missing+=(dante-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    need_root "${missing[*]}"
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Keep the packages' own services (squid on 3128, nginx on 80, tinyproxy on 8888, danted)
    # from starting: this suite starts its own instances, on free ports, and stops them.
    policy_added=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$policy_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
export PATH="$PATH:/usr/sbin:/sbin"
PYTHON=${PYTHON:-python3}
if ! command -v mitmdump >/dev/null 2>&1; then
    log "pip install mitmproxy"
    "$PYTHON" -m pip install -q mitmproxy
    hash -r
fi
if ! "$PYTHON" -c 'import standardwebhooks' >/dev/null 2>&1; then
    log "pip install standardwebhooks"
    "$PYTHON" -m pip install -q standardwebhooks
fi
MITMDUMP=$(command -v mitmdump || echo "$("$PYTHON" -c 'import sys, os; print(os.path.join(os.path.dirname(sys.executable), "mitmdump"))')")
SQUID_HELPER=
for f in /usr/lib/squid/basic_ncsa_auth /usr/lib64/squid/basic_ncsa_auth; do
    if [ -x "$f" ]; then SQUID_HELPER=$f; break; fi
done
[ -n "$SQUID_HELPER" ] || { log "squid's basic_ncsa_auth helper not found"; exit 1; }

# --- workspace and cleanup -------------------------------------------------------------------
DIR=$(mktemp -d /tmp/posthaste-interop.XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        log "FAILED (status $status); server logs:"
        for f in squid-access.log squid-cache.log nginx-error.log nginx-tls.log nginx-mtls.log nginx-http.log nginx-feed.log mitm.log \
            webhook.log tinyproxy.log tinyproxy-stdout.log danted.log danted-stdout.log; do
            [ -f "$DIR/$f" ] && { echo "--- $f"; tail -n 30 "$DIR/$f"; }
        done
    fi
    rm -rf "$DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { # name port [pid]: fails at once if the server has exited
    for _ in $(seq 1 300); do
        if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then log "$1 exited before listening on $2"; return 1; fi
        if "$PYTHON" -c "import socket,sys; socket.create_connection(('127.0.0.1',$2),0.2).close()" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "$1 did not listen on $2"; return 1
}

NGX_TLS=$(free_port); NGX_MTLS=$(free_port); NGX_HTTP=$(free_port); NGX_FEED=$(free_port); SQUID_PORT=$(free_port); MITM_PORT=$(free_port)
TINY_PORT=$(free_port); DANTE_PORT=$(free_port)
USER_NAME=interop
USER_PASS="s3cret:p@ss"
# tinyproxy's BasicAuth takes [-a-z0-9._] only.
TINY_PASS="s3cret.tiny-pw"
# dante checks the system's users: a dedicated one, without a home or a shell.
SOCKS_USER=posthaste-socks
SOCKS_PASS="s0cks:p@ss w"

# --- certificates ----------------------------------------------------------------------------
cd "$DIR"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=posthaste interop CA" -keyout ca.key -out ca.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > server.ext
ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=posthaste interop client CA" -keyout client-ca.key -out client-ca.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
# The client key as SEC1 ("EC PRIVATE KEY"), as openssl writes it traditionally.
ossl ecparam -name prime256v1 -genkey -noout -out client.key
ossl req -new -key client.key -subj "/CN=posthaste-interop-client" -out client.csr
printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' > client.ext
ossl x509 -req -in client.csr -CA client-ca.pem -CAkey client-ca.key -CAcreateserial -days 2 -extfile client.ext -out client.pem
chmod 644 ./*.pem ./*.key
printf '%s:%s\n' "$USER_NAME" "$(openssl passwd -apr1 "$USER_PASS")" > squid.passwd
chmod 644 squid.passwd

# --- nginx -----------------------------------------------------------------------------------
mkdir -p nginx-tmp && chmod 777 nginx-tmp
touch nginx-tls.log nginx-mtls.log nginx-http.log nginx-feed.log nginx-error.log && chmod 666 nginx-*.log
# The pollers' feed: a static JSON file nginx serves with ETag and Last-Modified, answering
# conditional requests with 304 itself. The tests rewrite it.
mkdir -p feed && chmod 777 feed
cat > nginx.conf <<EOF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log warn;
events { worker_connections 64; }
http {
    client_body_temp_path $DIR/nginx-tmp/body;
    proxy_temp_path $DIR/nginx-tmp/proxy;
    fastcgi_temp_path $DIR/nginx-tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx-tmp/uwsgi;
    scgi_temp_path $DIR/nginx-tmp/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    log_format feed '"\$request" \$status inm="\$http_if_none_match" ims="\$http_if_modified_since" etag=\$sent_http_etag';
    log_format interop '\$remote_addr "\$request" \$status len=\$request_length run=\$http_x_interop_run client="\$ssl_client_s_dn"';
    server {
        listen 127.0.0.1:$NGX_TLS ssl;
        ssl_certificate $DIR/server.pem;
        ssl_certificate_key $DIR/server.key;
        access_log $DIR/nginx-tls.log interop;
        location / { return 200 "ok\n"; }
    }
    server {
        listen 127.0.0.1:$NGX_MTLS ssl;
        ssl_certificate $DIR/server.pem;
        ssl_certificate_key $DIR/server.key;
        ssl_client_certificate $DIR/client-ca.pem;
        ssl_verify_client on;
        access_log $DIR/nginx-mtls.log interop;
        location / { return 200 "ok\n"; }
    }
    server {
        listen 127.0.0.1:$NGX_FEED;
        access_log $DIR/nginx-feed.log feed;
        root $DIR/feed;
        location / { default_type application/json; }
    }
    server {
        listen 127.0.0.1:$NGX_HTTP;
        access_log $DIR/nginx-http.log interop;
        location / { return 200 "ok\n"; }
    }
}
EOF
log "nginx on $NGX_TLS (TLS), $NGX_MTLS (mTLS), $NGX_HTTP (plain), $NGX_FEED (the pollers' feed)"
nginx -p "$DIR" -c "$DIR/nginx.conf" -g 'daemon off;' >"$DIR/nginx-stdout.log" 2>&1 &
PIDS+=($!)
wait_port nginx "$NGX_TLS" "$!"

# --- squid -----------------------------------------------------------------------------------
touch squid-access.log squid-cache.log && chmod 666 squid-access.log squid-cache.log
chmod 777 "$DIR"
cat > squid.conf <<EOF
# Stock squid rules (Safe_ports, CONNECT only to SSL_ports), with our TLS test ports added to
# SSL_ports the way an administrator allows 443, and basic authentication required.
http_port 127.0.0.1:$SQUID_PORT
visible_hostname posthaste-interop
pid_filename $DIR/squid.pid
access_log stdio:$DIR/squid-access.log squid
cache_log $DIR/squid-cache.log
cache_store_log none
coredump_dir $DIR
cache deny all
icp_port 0
htcp_port 0
pinger_enable off
shutdown_lifetime 1 second
auth_param basic program $SQUID_HELPER $DIR/squid.passwd
auth_param basic realm posthaste-interop
acl SSL_ports port 443 $NGX_TLS $NGX_MTLS
acl Safe_ports port 80 443 1025-65535
acl CONNECT method CONNECT
acl authenticated proxy_auth REQUIRED
http_access deny !Safe_ports
http_access deny CONNECT !SSL_ports
http_access allow localhost authenticated
http_access deny all
EOF
log "squid on $SQUID_PORT"
squid -N -f "$DIR/squid.conf" >"$DIR/squid-stdout.log" 2>&1 &
PIDS+=($!)
wait_port squid "$SQUID_PORT" "$!"

# --- mitmproxy -------------------------------------------------------------------------------
mkdir -p mitm
log "mitmproxy on $MITM_PORT"
"$MITMDUMP" --listen-host 127.0.0.1 --listen-port "$MITM_PORT" --set confdir="$DIR/mitm" \
    --set ssl_verify_upstream_trusted_ca="$DIR/ca.pem" >"$DIR/mitm.log" 2>&1 &
PIDS+=($!)
wait_port mitmproxy "$MITM_PORT" "$!"
for _ in $(seq 1 100); do [ -s mitm/mitmproxy-ca-cert.pem ] && break; sleep 0.1; done
[ -s mitm/mitmproxy-ca-cert.pem ] || { log "mitmproxy wrote no CA"; exit 1; }

# --- tinyproxy -------------------------------------------------------------------------------
touch tinyproxy.log && chmod 666 tinyproxy.log
cat > tinyproxy.conf <<EOF
# Debian's stock settings (Allow 127.0.0.1; ConnectPort 443 and 563, as upstream ships them),
# with basic authentication.
Port $TINY_PORT
Listen 127.0.0.1
Timeout 600
DefaultErrorFile "/usr/share/tinyproxy/default.html"
LogFile "$DIR/tinyproxy.log"
LogLevel Info
PidFile "$DIR/tinyproxy.pid"
MaxClients 100
Allow 127.0.0.1
ViaProxyName "tinyproxy"
ConnectPort 443
ConnectPort 563
BasicAuth $USER_NAME $TINY_PASS
EOF
log "tinyproxy on $TINY_PORT"
tinyproxy -d -c "$DIR/tinyproxy.conf" >"$DIR/tinyproxy-stdout.log" 2>&1 &
PIDS+=($!)
wait_port tinyproxy "$TINY_PORT" "$!"

# --- dante -----------------------------------------------------------------------------------
need_root "the system user $SOCKS_USER that dante checks passwords against"
if ! id "$SOCKS_USER" >/dev/null 2>&1; then
    log "useradd $SOCKS_USER"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SOCKS_USER"
fi
printf '%s:%s\n' "$SOCKS_USER" "$SOCKS_PASS" | chpasswd
touch danted.log && chmod 666 danted.log
cat > danted.conf <<EOF
# SOCKS5 with the username method (RFC 1929) against the system's users, loopback only.
logoutput: $DIR/danted.log
internal: 127.0.0.1 port = $DANTE_PORT
external: 127.0.0.1
clientmethod: none
socksmethod: username
user.privileged: root
user.unprivileged: nobody
client pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
    log: error
}
socks pass {
    from: 127.0.0.0/8 to: 127.0.0.0/8
    command: connect
    log: error connect
}
socks block {
    from: 0.0.0.0/0 to: 0.0.0.0/0
    log: error connect
}
EOF
log "dante on $DANTE_PORT"
danted -f "$DIR/danted.conf" -p "$DIR/danted.pid" >"$DIR/danted-stdout.log" 2>&1 &
PIDS+=($!)
wait_port dante "$DANTE_PORT" "$!"

# --- the Standard Webhooks verifier ----------------------------------------------------------
cd - >/dev/null
WEBHOOK_SECRET="whsec_$("$PYTHON" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
WEBHOOK_SECRET="$WEBHOOK_SECRET" "$PYTHON" scripts/webhook_receiver.py "$DIR/webhook.port" >"$DIR/webhook.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$DIR/webhook.port" ] && break; sleep 0.1; done
[ -s "$DIR/webhook.port" ] || { log "the webhook receiver did not start"; cat "$DIR/webhook.log"; exit 1; }
WEBHOOK_PORT=$(cat "$DIR/webhook.port")
wait_port "webhook receiver" "$WEBHOOK_PORT"
log "standardwebhooks receiver on $WEBHOOK_PORT"

# --- tests -----------------------------------------------------------------------------------
export INTEROP_DIR="$DIR" INTEROP_NGINX_TLS="$NGX_TLS" INTEROP_NGINX_MTLS="$NGX_MTLS" \
    INTEROP_NGINX_HTTP="$NGX_HTTP" INTEROP_NGINX_FEED="$NGX_FEED" INTEROP_SQUID="127.0.0.1:$SQUID_PORT" INTEROP_MITM="127.0.0.1:$MITM_PORT" \
    INTEROP_USER="$USER_NAME" INTEROP_PASSWORD="$USER_PASS" \
    INTEROP_TINYPROXY="127.0.0.1:$TINY_PORT" INTEROP_TINYPROXY_PASSWORD="$TINY_PASS" \
    INTEROP_DANTE="127.0.0.1:$DANTE_PORT" INTEROP_SOCKS_USER="$SOCKS_USER" INTEROP_SOCKS_PASSWORD="$SOCKS_PASS" \
    INTEROP_WEBHOOKS="127.0.0.1:$WEBHOOK_PORT" INTEROP_WEBHOOK_SECRET="$WEBHOOK_SECRET"
# Proxy variables of the calling environment must not steer the tests.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
log "cargo test --test interop -- --ignored"
cargo test --test interop -- --ignored --test-threads=1 "$@"
log "passed"
