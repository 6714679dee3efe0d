#!/usr/bin/env bash
# Speed harness for transparent gateway mode (issue 13): new HTTPS
# connections per second, each a fresh TCP connection + full TLS handshake
# + one small GET, closed, from a client network namespace through a
# gateway namespace to an origin namespace:
#   - direct:      the gateway only routes (no filter; a reference, not a ceiling),
#   - transparent: redirected by `schoolgate firewall -apply` to
#                  schoolgate's listen.transparent_https (SNI decided,
#                  destination checked, spliced),
#   - explicit:    through schoolgate's explicit proxy (CONNECT),
#   - squid:       redirected by nft to squid (squid-openssl) on
#                  `https_port ... intercept ssl-bump`, `ssl_bump peek step1`
#                  + `ssl_bump splice all`,
# in interleaved rounds (direct, transparent, explicit, squid, direct, ...).
# The gateway's processes run on GW_CPU, the origin and the client on
# LOAD_CPU. Needs root, iproute2, nftables, squid-openssl.
#
#   bench/transparent/run.sh                  # DURATION=4s ROUNDS=5 CONNS=16
#   DURATION=5s ROUNDS=7 bench/transparent/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-4s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-16}
GW_CPU=${GW_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
CLIENT_DNS=${CLIENT_DNS:-1} # 1: the client asks the DNS filter for the name first, as a phone does
GW_HOSTS=${GW_HOSTS:-1}     # 1: the gateway's own resolver finds the name in its hosts file; 0: asks the origin's DNS server
# schoolgate's GODEBUG: the packaged service's (its unit's Environment=GODEBUG=) unless set; SG_GODEBUG= for none
SG_GODEBUG=${SG_GODEBUG-$(sed -n 's/^Environment=GODEBUG=//p' packaging/debian/schoolgate.service)}

if [ "$(id -u)" != 0 ]; then
  echo "bench/transparent: needs root (network namespaces, nftables, squid); skipped" >&2
  exit 0
fi
for bin in ip nft taskset curl; do
  command -v "$bin" >/dev/null || { echo "bench/transparent: needs $bin (iproute2, nftables, util-linux, curl); skipped" >&2; exit 0; }
done
if ! command -v squid >/dev/null || [ ! -x /usr/lib/squid/security_file_certgen ]; then
  echo "bench/transparent: needs squid with OpenSSL (apt-get install squid-openssl); skipped" >&2
  exit 0
fi
if ! squid -v | grep -q -- '--with-openssl'; then
  echo "bench/transparent: this squid has no OpenSSL (ssl-bump); apt-get install squid-openssl; skipped" >&2
  exit 0
fi

WORK=${WORK:-$(mktemp -d /tmp/schoolgate-tbench.XXXXXX)}
sfx=$(( $$ % 100000 ))
CLI=sbc$sfx GW=sbg$sfx ORG=sbo$sfx
# Private test addresses that exist only inside these namespaces.
C_SG=10.201.1.2      # a client of schoolgate (clients: 10.201.1.0/25)
C_SQUID=10.201.1.200 # redirected to squid
C_DIRECT=10.201.1.201 # not redirected at all
GW_IN=10.201.1.1 GW_OUT=10.201.2.1 ORIGIN=10.201.2.2
NAME=allowed.test

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$CLI" "$GW" "$ORG"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "/etc/netns/$GW"
}
trap cleanup EXIT

echo "bench: work dir $WORK" >&2
mkdir -p "$WORK/bin" "$WORK/squid"
go build -o "$WORK/bin/schoolgate" ./cmd/schoolgate
go build -o "$WORK/bin/origin" ./bench/transparent/origin
go build -o "$WORK/bin/connload" ./bench/transparent/connload

# --- the namespaces: client -- gateway -- origin ------------------------------
for ns in "$CLI" "$GW" "$ORG"; do ip netns add "$ns"; done
# ip netns exec puts /etc/netns/NS/hosts over /etc/hosts: the gateway's names.
mkdir -p "/etc/netns/$GW"
printf '127.0.0.1 localhost\n' > "/etc/netns/$GW/hosts"
[ "$GW_HOSTS" = 0 ] || printf '%s %s\n' "$ORIGIN" "$NAME" >> "/etc/netns/$GW/hosts"
printf 'nameserver %s\n' "$ORIGIN" > "/etc/netns/$GW/resolv.conf"
ip link add c0 netns "$CLI" type veth peer g0 netns "$GW"
ip link add g1 netns "$GW" type veth peer o0 netns "$ORG"
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
for a in $C_SG $C_SQUID $C_DIRECT; do nsx "$CLI" ip addr add "$a/24" dev c0; done
nsx "$GW" ip addr add "$GW_IN/24" dev g0
nsx "$GW" ip addr add "$GW_OUT/24" dev g1
nsx "$ORG" ip addr add "$ORIGIN/24" dev o0
nsx "$CLI" ip link set lo up; nsx "$CLI" ip link set c0 up
nsx "$GW" ip link set lo up; nsx "$GW" ip link set g0 up; nsx "$GW" ip link set g1 up
nsx "$ORG" ip link set lo up; nsx "$ORG" ip link set o0 up
nsx "$CLI" ip route add default via "$GW_IN"
nsx "$ORG" ip route add default via "$GW_OUT"
nsx "$GW" sysctl -qw net.ipv4.ip_forward=1
# Many short connections from few addresses: reuse TIME_WAIT ports.
for ns in "$CLI" "$GW"; do
  nsx "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1
  nsx "$ns" sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
done

# --- the origin: HTTPS on 443, DNS on 53 -------------------------------------
ip netns exec "$ORG" taskset -c "$LOAD_CPU" "$WORK/bin/origin" -https :443 -dns :53 -names "$NAME" -ip "$ORIGIN" \
  2> "$WORK/origin.log" & pids+=($!)

# --- schoolgate: transparent listeners, the explicit proxy, the DNS filter ---
mkdir -p "$WORK/sg"
cat > "$WORK/sg/schoolgate.yaml" <<YEOF
timezone: UTC
listen: {proxy: "$GW_IN:3128", admin: "127.0.0.1:9191", dns: ":5353", transparent_http: ":8080", transparent_https: ":8443"}
clients: [10.201.1.0/25]
proxy:
  deny_destinations: [169.254.0.0/16]
dns: {upstreams: ["$ORIGIN:53"]}
default_profile: student
lists:
  - category: gambling
    domains: [casino.test]
profiles:
  student:
    rules:
      - action: block
        categories: [gambling]
      - action: block
        categories: [ip-literal]
    default: allow
log: {dir: logs, retention_days: 0}
state_dir: state
YEOF
nsx "$GW" "$WORK/bin/schoolgate" firewall -config "$WORK/sg/schoolgate.yaml" -apply >/dev/null
(cd "$WORK/sg" && exec ip netns exec "$GW" taskset -c "$GW_CPU" env GODEBUG="$SG_GODEBUG" "$WORK/bin/schoolgate" serve \
  -config "$WORK/sg/schoolgate.yaml" 2> "$WORK/sg/serve.log") & pids+=($!)
SG_PID=${pids[-1]}

# --- squid (squid-openssl): intercept + ssl-bump, peek at step 1, splice -----
SQ=$WORK/squid
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=schoolgate bench squid CA" -keyout "$SQ/ca.key" -out "$SQ/ca.pem" 2>/dev/null
/usr/lib/squid/security_file_certgen -c -s "$SQ/ssl_db" -M 4MB >/dev/null
chown -R proxy:proxy "$SQ"
chmod -R a+rX "$WORK"
cat > "$SQ/squid.conf" <<QEOF
http_port 127.0.0.1:3199
https_port $GW_IN:3130 intercept ssl-bump cert=$SQ/ca.pem key=$SQ/ca.key generate-host-certificates=on dynamic_cert_mem_cache_size=4MB
sslcrtd_program /usr/lib/squid/security_file_certgen -s $SQ/ssl_db -M 4MB
sslcrtd_children 2 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump splice all
acl clients src 10.201.1.0/24
http_access allow clients
http_access deny all
pid_filename $SQ/squid.pid
cache_log $SQ/cache.log
access_log stdio:$SQ/access.log squid
cache deny all
cache_mem 8 MB
coredump_dir $SQ
hosts_file /etc/netns/$GW/hosts
dns_nameservers $ORIGIN
shutdown_lifetime 1 seconds
workers 1
QEOF
nsx "$GW" nft -f - <<NEOF
table ip sgbench_squid {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip saddr $C_SQUID tcp dport 443 redirect to :3130
	}
}
NEOF
ip netns exec "$GW" taskset -c "$GW_CPU" squid -N -f "$SQ/squid.conf" 2> "$SQ/stderr.log" & pids+=($!)
SQUID_PID=${pids[-1]}

# --- wait for everything, then check each path once ---------------------------
ccurl() { # src args... → prints http_code
  nsx "$CLI" curl -sk -o /dev/null -w '%{http_code}' -m 5 --noproxy '*' --interface "$1" "${@:2}" || true
}
ready=0
for _ in $(seq 1 150); do
  [ "$(ccurl "$C_DIRECT" --resolve "$NAME:443:$ORIGIN" "https://$NAME/")" = 200 ] &&
    grep -q '"serving"' "$WORK/sg/serve.log" 2>/dev/null &&
    [ "$(ccurl "$C_SQUID" --resolve "$NAME:443:$ORIGIN" "https://$NAME/")" = 200 ] && { ready=1; break; }
  sleep 0.2
done
if [ "$ready" != 1 ]; then
  echo "bench/transparent: the origin, schoolgate or squid did not come up in 30 s:" >&2
  tail -5 "$WORK/origin.log" "$WORK/sg/serve.log" "$SQ/stderr.log" "$SQ/cache.log" >&2 2>/dev/null || true
  exit 1
fi
if [ "$CLIENT_DNS" = 1 ]; then
  # As a phone would: the name asked of "its resolver", which the firewall
  # sends to the DNS filter; the filter remembers its answer (the
  # transparent path then checks the destination against it).
  if command -v dig >/dev/null; then
    got=$(nsx "$CLI" dig +short +tries=2 +time=3 -b "$C_SG" "@$ORIGIN" "$NAME" A 2>/dev/null || true)
    echo "bench: the DNS filter answered $NAME: ${got:-nothing}" >&2
  else
    echo "bench: dig (dnsutils) not installed: the client does not ask the DNS filter first (as CLIENT_DNS=0)" >&2
  fi
fi
codes="$(ccurl "$C_DIRECT" --resolve "$NAME:443:$ORIGIN" "https://$NAME/") $(ccurl "$C_SG" --resolve "$NAME:443:$ORIGIN" "https://$NAME/")"
codes+=" $(ccurl "$C_SG" -x "http://$GW_IN:3128" "https://$NAME/") $(ccurl "$C_SQUID" --resolve "$NAME:443:$ORIGIN" "https://$NAME/")"
blocked=$(ccurl "$C_SG" --resolve "casino.test:443:$ORIGIN" "https://casino.test/")
echo "bench: HTTP status direct, transparent, explicit, squid: $codes; transparent casino.test (blocked, cut): $blocked" >&2
if [ "$codes" != "200 200 200 200" ] || [ "$blocked" != 000 ]; then
  echo "bench/transparent: a path does not work as it should (want 200 200 200 200 and 000); see $WORK" >&2
  exit 1
fi

# --- the rounds -----------------------------------------------------------------
cputicks() { awk '{print $14, $15}' "/proc/$1/stat"; } # user system
# context switches of all the process's threads so far (voluntary + not)
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }
HZ=$(getconf CLK_TCK)
RATE=0 CPU=0
run() { # label pid connload-args...  → prints a line, sets RATE and CPU (µs of the gateway process per connection)
  local label=$1 pid=$2 out t0 t1 ok prof=""
  shift 2
  if [ "$label" = "${PERF:-}" ] && [ ! -e "$WORK/perf.data" ] && command -v perf >/dev/null; then
    perf record -q -g -p "$pid" -o "$WORK/perf.data" -- sleep "${DURATION%s}" >/dev/null 2>&1 & prof=$!
  fi
  if [ "$label" = "${SCHED:-}" ] && [ ! -e "$WORK/sched.data" ] && command -v perf >/dev/null; then
    # where the process's threads sleep and are woken, with their stacks
    perf record -q -g -e sched:sched_switch -e sched:sched_wakeup -p "$pid" -o "$WORK/sched.data" -- sleep "${DURATION%s}" >/dev/null 2>&1 & prof=$!
  fi
  t0=$(cputicks "$pid"); cs0=$(switches "$pid")
  out=$(nsx "$CLI" taskset -c "$LOAD_CPU" "$WORK/bin/connload" -c "$CONNS" -d "$DURATION" -sni "$NAME" ${CLASSIC:+-classic} "$@" 2>&1) || true
  t1=$(cputicks "$pid"); cs1=$(switches "$pid")
  [ -z "$prof" ] || wait "$prof" || true
  RATE=$(awk '/^conns\/s/{print $2}' <<<"$out"); RATE=${RATE:-0}
  ok=$(awk '/^conns\/s/{print $4}' <<<"$out"); ok=${ok:-0}
  read -r u0 s0 <<<"$t0"; read -r u1 s1 <<<"$t1"
  us() { awk -v t="$1" -v hz="$HZ" -v n="$ok" 'BEGIN{ if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print 0 }'; }
  CPU=$(us $((u1 + s1 - u0 - s0)))
  cs=$(awk -v c=$((cs1 - cs0)) -v n="$ok" 'BEGIN{ if (n > 0) printf "%.1f", c / n; else print 0 }')
  printf '  %-12s %9s conns/s  %5s µs CPU/conn (user %s sys %s, %s switches)  %s\n' "$label" "$RATE" "$CPU" "$(us $((u1 - u0)))" "$(us $((s1 - s0)))" "$cs" \
    "$(head -2 <<<"$out" | sed -e 's/^conns\/s [^ ]* //' | tr '\n' ' ')"
}
direct=(-src "$C_DIRECT" -target "$ORIGIN:443")
transparent=(-src "$C_SG" -target "$ORIGIN:443")
explicit=(-src "$C_SG" -proxy "$GW_IN:3128" -target "$NAME:443")
squid=(-src "$C_SQUID" -target "$ORIGIN:443")
# Warm-up: each path for a moment (the processes' first connections, caches).
warm() { nsx "$CLI" taskset -c "$LOAD_CPU" "$WORK/bin/connload" -c "$CONNS" -d 1s -sni "$NAME" "$@" >/dev/null 2>&1 || true; }
warm "${direct[@]}"; warm "${transparent[@]}"; warm "${explicit[@]}"; warm "${squid[@]}"
echo "bench: $CONNS connections at a time, $DURATION a run, $ROUNDS rounds; gateway on CPU $GW_CPU, origin + client on CPU $LOAD_CPU; schoolgate GODEBUG=${SG_GODEBUG:-(none)}" >&2
all_d="" all_t="" all_e="" all_s="" cpu_t="" cpu_e="" cpu_s="" r_te="" r_ts=""
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.3f", a/b; else print "0" }'; }
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS"
  run direct "$SG_PID" "${direct[@]}"; all_d+=" $RATE"
  run transparent "$SG_PID" "${transparent[@]}"; t=$RATE; all_t+=" $RATE"; cpu_t+=" $CPU"
  run explicit "$SG_PID" "${explicit[@]}"; e=$RATE; all_e+=" $RATE"; cpu_e+=" $CPU"
  run squid "$SQUID_PID" "${squid[@]}"; s=$RATE; all_s+=" $RATE"; cpu_s+=" $CPU"
  r_te+=" $(ratio "$t" "$e")"; r_ts+=" $(ratio "$t" "$s")"
done

# min / median / max of a list of numbers
mmm() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{printf "%s / %s / %s", a[1], a[int((NR+1)/2)], a[NR]}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo
echo "new HTTPS connections/s over $ROUNDS rounds (min / median / max):"
printf '  %-12s %s\n' direct "$(mmm <<<"$all_d")" transparent "$(mmm <<<"$all_t")" explicit "$(mmm <<<"$all_e")" squid "$(mmm <<<"$all_s")"
echo "gateway process CPU µs per connection (min / median / max):"
printf '  %-12s %s\n' transparent "$(mmm <<<"$cpu_t")" explicit "$(mmm <<<"$cpu_e")" squid "$(mmm <<<"$cpu_s")"
echo "ratios, round by round (min / median / max):"
printf '  transparent / explicit CONNECT = %s   (goal >= 0.9; rounds:%s)\n' "$(mmm <<<"$r_te")" "$r_te"
printf '  transparent / squid peek+splice = %s   (goal >= 1.0; rounds:%s)\n' "$(mmm <<<"$r_ts")" "$r_ts"
echo "medians: transparent/explicit $(median <<<"$r_te"), transparent/squid $(median <<<"$r_ts")"
if [ "${SYSCALLS:-0}" = 1 ] && command -v strace >/dev/null; then
  # One more run of each path, not counted above (strace slows the traced
  # process): the gateway process's system calls per completed connection,
  # the Go runtime's sleeps and wake-ups (futex, nanosleep, sched_yield) left out.
  echo "system calls of the gateway process per connection (strace -c -f, a ${DURATION} run each):"
  for path in transparent explicit squid; do
    declare -n args=$path
    pid=$SG_PID; [ "$path" = squid ] && pid=$SQUID_PID
    strace -c -f -p "$pid" -o "$WORK/strace.$path" 2>/dev/null & st=$!
    sleep 0.5
    out=$(nsx "$CLI" taskset -c "$LOAD_CPU" "$WORK/bin/connload" -c "$CONNS" -d "$DURATION" -sni "$NAME" "${args[@]}" 2>&1) || true
    kill -INT "$st" 2>/dev/null || true; wait "$st" 2>/dev/null || true
    n=$(awk '/^conns\/s/{print $4}' <<<"$out")
    awk -v n="${n:-0}" -v p="$path" '$1 ~ /^[0-9.]+$/ && $NF != "total" {
        c = $4; name = $NF
        if (name == "futex" || name == "nanosleep" || name == "sched_yield" || name == "restart_syscall") next
        tot += c; if (c / n >= 0.5) top = top sprintf(" %s %.1f", name, c / n)
      } END { if (n > 0) printf "  %-12s %5.1f  (%s)\n", p, tot / n, substr(top, 2) }' "$WORK/strace.$path"
  done
fi
if [ "${DEBUG:-0}" = 1 ]; then
  for ns in "$CLI" "$GW" "$ORG"; do
    echo "== $ns"; nsx "$ns" nstat -az 2>/dev/null | awk '$2 > 0' | grep -Ei 'overflow|drop|retrans|syn|timewait|reset|fail' || true
  done
  nsx "$GW" conntrack -S 2>/dev/null || true
fi
