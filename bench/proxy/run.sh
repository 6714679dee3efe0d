#!/usr/bin/env bash
# Speed harness for the web proxy (issue 3): requests/s through
#   - nothing (wrk straight to the upstream),
#   - a bare goproxy forward proxy (no filtering, tuned keep-alive transport),
#   - schoolgate (full public lists of ../shared/lists, authentication on),
#   - squid + squidGuard holding the same lists,
# side by side in one run. Upstream and proxy are pinned to CPU 0, wrk to
# CPU 1. 1 KiB responses over keep-alive.
#
#   bench/proxy/run.sh                 # DURATION=10s CONNS=64 ROUNDS=5 by default
#   DURATION=20s CONNS=128 ROUNDS=5 bench/proxy/run.sh
#
# Installs wrk, squid and squidguard from Debian when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5} # each proxy is measured ROUNDS times, interleaved; the median counts
CONNS=${CONNS:-64}
WORK=${WORK:-$(mktemp -d /tmp/schoolgate-bench.XXXXXX)}
LISTS=${LISTS:-}
if [ -z "$LISTS" ]; then
  d=$ROOT
  while [ "$d" != / ]; do
    if [ -d "$d/shared/lists" ]; then LISTS=$d/shared/lists; break; fi
    d=$(dirname "$d")
  done
fi
[ -n "$LISTS" ] && [ -d "$LISTS" ] || { echo "bench: shared/lists not found (set LISTS=...)" >&2; exit 1; }

UP_ADDR=127.0.0.2:18080
BARE_ADDR=127.0.0.1:18081
SG_ADDR=127.0.0.1:18082
SG_ADMIN=127.0.0.1:18083
SQUID_ADDR=127.0.0.1:18084

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v squid >/dev/null || need+=(squid)
command -v squidGuard >/dev/null || need+=(squidguard)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v taskset >/dev/null || { echo "bench: taskset (util-linux) missing" >&2; exit 1; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "bench: work dir $WORK" >&2
mkdir -p "$WORK/bin" "$WORK/lists" "$WORK/logs"
go build -o "$WORK/bin/upstream" ./bench/proxy/upstream
go build -o "$WORK/bin/bareproxy" ./bench/proxy/bareproxy
go build -o "$WORK/bin/schoolgate" ./cmd/schoolgate

# --- the lists, as plain domain files for squidGuard -------------------------
# category name → files (decompressed, hosts lines reduced to the domain).
declare -A SGCAT=(
  [gambling]="ut1/gambling/domains.gz blocklistproject/gambling-nl.txt.gz sinfonietta/gambling-hosts.gz"
  [adult]="sinfonietta/pornography-hosts.gz ut1/mixed_adult/domains.gz"
  [drugs]="ut1/drogue/domains.gz blocklistproject/drugs-nl.txt.gz"
  [piracy]="ut1/warez/domains.gz blocklistproject/piracy-nl.txt.gz blocklistproject/torrent-nl.txt.gz"
  [malware]="ut1/malware/domains.gz blocklistproject/ransomware-nl.txt.gz ut1/cryptojacking/domains.gz"
  [phishing]="ut1/phishing/domains.gz"
  [social]="ut1/social_networks/domains.gz blocklistproject/facebook-nl.txt.gz blocklistproject/tiktok-nl.txt.gz blocklistproject/twitter-nl.txt.gz sinfonietta/social-hosts.gz"
  [chat]="ut1/chat/domains.gz blocklistproject/whatsapp-nl.txt.gz"
  [games]="ut1/games/domains.gz blocklistproject/fortnite-nl.txt.gz"
  [dating]="ut1/dating/domains.gz"
  [hacking]="ut1/hacking/domains.gz ut1/ddos/domains.gz"
  [proxy-avoidance]="ut1/redirector/domains.gz ut1/vpn/domains.gz"
  [streaming]="ut1/audio-video/domains.gz ut1/radio/domains.gz"
  [violence]="ut1/agressif/domains.gz sinfonietta/snuff-hosts.gz"
  [doh]="ut1/doh/domains.gz"
)
SG_DB=$WORK/squidguard/db
mkdir -p "$SG_DB"
sg_dests=""
sg_pass=""
for cat in "${!SGCAT[@]}"; do
  d="$SG_DB/$cat"
  mkdir -p "$d"
  : > "$d/domains"
  for f in ${SGCAT[$cat]}; do
    [ -f "$LISTS/$f" ] || continue
    gzip -dc "$LISTS/$f" | sed -e 's/#.*//' -e 's/\r//' | awk 'NF==1{print tolower($1)} NF>=2 && ($1=="0.0.0.0"||$1=="127.0.0.1"){print tolower($2)}' \
      | grep -E '^[a-z0-9._-]+\.[a-z0-9-]+$' >> "$d/domains" || true
  done
  sort -u -o "$d/domains" "$d/domains"
  sg_dests+="dest $cat {
  domainlist $cat/domains
}
"
  sg_pass+="!$cat "
done
cat > "$WORK/squidguard/squidGuard.conf" <<SGEOF
dbhome $SG_DB
logdir $WORK/squidguard
$sg_dests
acl {
  default {
    pass ${sg_pass}all
    redirect 302:http://blocked.invalid/
  }
}
SGEOF
echo "bench: building the squidGuard databases ($(cat "$SG_DB"/*/domains | wc -l) domains)" >&2
squidGuard -c "$WORK/squidguard/squidGuard.conf" -C all 2>/dev/null || true
chown -R proxy:proxy "$WORK/squidguard" 2>/dev/null || true
chmod -R a+rX "$WORK"

# --- schoolgate: the same public lists, loaded by its own loaders -------------
lists_yaml="  - ut1: $LISTS/ut1
"
for pair in gambling:blocklistproject/gambling-nl.txt.gz drugs:blocklistproject/drugs-nl.txt.gz \
            piracy:blocklistproject/piracy-nl.txt.gz piracy:blocklistproject/torrent-nl.txt.gz \
            malware:blocklistproject/ransomware-nl.txt.gz social:blocklistproject/facebook-nl.txt.gz \
            social:blocklistproject/tiktok-nl.txt.gz social:blocklistproject/twitter-nl.txt.gz \
            chat:blocklistproject/whatsapp-nl.txt.gz games:blocklistproject/fortnite-nl.txt.gz \
            adult:sinfonietta/pornography-hosts.gz gambling:sinfonietta/gambling-hosts.gz \
            social:sinfonietta/social-hosts.gz violence:sinfonietta/snuff-hosts.gz; do
  lists_yaml+="  - {category: ${pair%%:*}, file: $LISTS/${pair#*:}}
"
done
printf 'benchpw\n' | "$WORK/bin/schoolgate" users add -file "$WORK/users.csv" -profile student bench >/dev/null
cat > "$WORK/schoolgate.yaml" <<YEOF
timezone: UTC
listen: {proxy: "$SG_ADDR", dns: "", admin: "$SG_ADMIN"}
clients: [127.0.0.0/8]
proxy:
  connect_ports: [443]
  deny_destinations: [169.254.0.0/16]
  max_connections: 4096
users: {file: users.csv, require_auth: true}
default_profile: student
lists:
$lists_yaml
profiles:
  student:
    rules:
      - action: block
        categories: [adult, gambling, chat, streaming, social, games, dating, drugs, violence,
                     malware, phishing, hacking, piracy, proxy-avoidance, doh]
    default: allow
log: {dir: logs, retention_days: 0}
cache: {verdicts: 100000, dns: 1000}
YEOF

# --- squid -------------------------------------------------------------------
mkdir -p "$WORK/squid"
chown proxy:proxy "$WORK/squid" 2>/dev/null || true
cat > "$WORK/squid/squid.conf" <<QEOF
http_port $SQUID_ADDR
pid_filename $WORK/squid/squid.pid
cache_log $WORK/squid/cache.log
access_log stdio:$WORK/squid/access.log squid
cache deny all
cache_mem 8 MB
coredump_dir $WORK/squid
acl localnet src 127.0.0.0/8
http_access allow localnet
http_access deny all
url_rewrite_program /usr/bin/squidGuard -c $WORK/squidguard/squidGuard.conf
url_rewrite_children 8 startup=8 idle=2 concurrency=0
shutdown_lifetime 1 seconds
server_persistent_connections on
client_persistent_connections on
workers 1
QEOF

# --- start everything pinned to CPU 0 -----------------------------------------
taskset -c 0 "$WORK/bin/upstream" -addr "$UP_ADDR" & pids+=($!)
# The baseline of issue 3: goproxy with its transport tuned, Go's defaults otherwise.
# BARE_GOGC=400 gives it the collector setting schoolgate serve uses (like for like).
GOGC=${BARE_GOGC:-} taskset -c 0 "$WORK/bin/bareproxy" -addr "$BARE_ADDR" & pids+=($!)
(cd "$WORK" && exec taskset -c 0 "$WORK/bin/schoolgate" serve -config "$WORK/schoolgate.yaml" 2> "$WORK/schoolgate.log") & pids+=($!)
taskset -c 0 squid -N -f "$WORK/squid/squid.conf" 2> "$WORK/squid/stderr.log" & pids+=($!)

wait_http() { # url [proxy]
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null --max-time 2 ${2:+-x "$2"} "$1"; then return 0; fi
    sleep 0.2
  done
  echo "bench: $1 ${2:+via $2} never answered" >&2; return 1
}
wait_http "http://$UP_ADDR/"
wait_http "http://$UP_ADDR/" "http://$BARE_ADDR"
wait_http "http://$SG_ADMIN/healthz"
wait_http "http://$UP_ADDR/" "http://$SQUID_ADDR"

# Sanity: each filter blocks a listed site and passes the upstream.
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }
echo "bench: schoolgate upstream $(code -x "http://bench:benchpw@$SG_ADDR" "http://$UP_ADDR/"), bet365 $(code -x "http://bench:benchpw@$SG_ADDR" http://www.bet365.com/)" >&2
echo "bench: squid upstream $(code -x "http://$SQUID_ADDR" "http://$UP_ADDR/"), bet365 → $(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 5 -x "http://$SQUID_ADDR" http://www.bet365.com/ || true)" >&2

AUTH=$(printf 'bench:benchpw' | base64)
lua() { # file auth
  {
    echo 'wrk.method = "GET"'
    echo "wrk.path = \"http://$UP_ADDR/bench/page\""
    echo "wrk.headers[\"Host\"] = \"$UP_ADDR\""
    if [ -n "$2" ]; then echo "wrk.headers[\"Proxy-Authorization\"] = \"Basic $2\""; fi
  } > "$1"
}
lua "$WORK/plain.lua" ""
lua "$WORK/auth.lua" "$AUTH"
cat > "$WORK/direct.lua" <<LEOF
wrk.method = "GET"
wrk.path = "/bench/page"
LEOF

RPS=0
run() { # name url script; prints a line and sets RPS
  local out errs
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" -s "$3" "$2" 2>&1)
  RPS=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)
  printf '%-26s %10s req/s  %s\n' "$1" "$RPS" "$errs"
}
echo "bench: wrk -c$CONNS -d$DURATION, upstream+proxy on CPU 0, wrk on CPU 1" >&2
# Short warm-up of each path (idle upstream connections, caches).
for u in "http://$BARE_ADDR" "http://$SQUID_ADDR"; do taskset -c 1 wrk -t1 -c"$CONNS" -d2s -s "$WORK/plain.lua" "$u" >/dev/null 2>&1; done
taskset -c 1 wrk -t1 -c"$CONNS" -d2s -s "$WORK/auth.lua" "http://$SG_ADDR" >/dev/null 2>&1

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
all_direct="" all_bare="" all_sg="" all_squid=""
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS"
  run "  direct upstream" "http://$UP_ADDR" "$WORK/direct.lua"; all_direct+=" $RPS"
  run "  bare goproxy" "http://$BARE_ADDR" "$WORK/plain.lua"; all_bare+=" $RPS"
  run "  schoolgate (auth, lists)" "http://$SG_ADDR" "$WORK/auth.lua"; all_sg+=" $RPS"
  run "  squid + squidGuard" "http://$SQUID_ADDR" "$WORK/plain.lua"; all_squid+=" $RPS"
done
direct=$(median <<<"$all_direct"); bare=$(median <<<"$all_bare"); sg=$(median <<<"$all_sg"); squid=$(median <<<"$all_squid")
echo
echo "medians of $ROUNDS rounds (req/s):"
printf '  %-26s %10s\n' "direct upstream" "$direct" "bare goproxy" "$bare" "schoolgate (auth, lists)" "$sg" "squid + squidGuard" "$squid"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
printf 'schoolgate / bare goproxy      = %s   (target >= 1.00)\n' "$(ratio "$sg" "$bare")"
printf 'schoolgate / squid+squidGuard  = %s   (target >= 2.00)\n' "$(ratio "$sg" "$squid")"
printf 'schoolgate / direct upstream   = %s\n' "$(ratio "$sg" "$direct")"
