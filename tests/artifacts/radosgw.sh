#!/usr/bin/env bash
# A real S3 endpoint for the tests: a one-node Ceph cluster (one monitor, one OSD keeping its data
# in memory, no manager) and a radosgw on 127.0.0.1, from Debian 12's packages (Ceph 16):
#   apt-get install --no-install-recommends radosgw ceph-mon ceph-osd uuid-runtime curl
# (scripts/test.sh installs them). tests/artifacts/radosgw.py starts one for all test processes.
#
# usage: radosgw.sh start|stop
#   CEPH_DIR   state, logs and pid files (default /tmp/mender-tests-ceph); `start` empties it
#   RGW_PORT   the S3 port (default 7480); the monitor listens on 127.0.0.1:6789 (MON_PORT)
#   S3_ACCESS_KEY / S3_SECRET_KEY   the credentials of the S3 user it creates
set -euo pipefail
dir=${CEPH_DIR:-/tmp/mender-tests-ceph}
rgw_port=${RGW_PORT:-7480}
mon_port=${MON_PORT:-6789}
access_key=${S3_ACCESS_KEY:-CIACCESSKEY}
secret_key=${S3_SECRET_KEY:-CISECRETKEY}
conf="$dir/ceph.conf"

stop() {
  local pidfile
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}

fail() { echo "radosgw.sh: $*" >&2; tail -n 20 "$dir"/log/*.log >&2 2>/dev/null || true; stop; exit 1; }

case "${1:-start}" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool uuidgen curl; do
  command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install radosgw ceph-mon ceph-osd uuid-runtime curl)"
done

rm -rf "$dir"
mkdir -p "$dir"/{mon,osd,rgw,run,log}
fsid=$(uuidgen)
started=$(date +%s)

# One replica of everything, few placement groups, no warnings about it: a test cluster.
cat > "$conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
[mon]
mon data = $dir/mon/\$cluster-\$id
[osd]
osd data = $dir/osd/\$cluster-\$id
keyring = $dir/osd/\$cluster-\$id/keyring
osd objectstore = memstore
memstore device bytes = 2147483648
osd memory target = 939524096
[client.rgw.a]
keyring = $dir/rgw/keyring
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
EOF

# Keys: the monitor's and the admin client's, in one keyring the tools read through `keyring`.
ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$dir/keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null

# The monitor.
monmaptool --create --addv a "[v1:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" || fail "ceph-mon --mkfs failed"
ceph-mon -c "$conf" -i a || fail "ceph-mon did not start (is port $mon_port taken?)"

# One OSD: registered with the monitor, formatted, given its key, started.
osd_uuid=$(uuidgen)
osd_id=$(timeout 60 ceph -c "$conf" osd new "$osd_uuid") || fail "the monitor did not answer"
mkdir -p "$dir/osd/ceph-$osd_id"
ceph-osd -c "$conf" -i "$osd_id" --mkfs --mkkey --osd-uuid "$osd_uuid" --no-mon-config \
  2>>"$dir/log/osd-mkfs.log" || fail "ceph-osd --mkfs failed"
ceph -c "$conf" auth add "osd.$osd_id" osd 'allow *' mon 'allow profile osd' \
  -i "$dir/osd/ceph-$osd_id/keyring" >/dev/null 2>&1 || fail "registering the OSD's key failed"
ceph-osd -c "$conf" -i "$osd_id" || fail "ceph-osd did not start"

# The gateway, with a key of its own, and the S3 user once it answers.
ceph -c "$conf" auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$dir/rgw/keyring" \
  || fail "creating the gateway's key failed"
radosgw -c "$conf" -n client.rgw.a || fail "radosgw did not start"
for _ in $(seq 1 180); do
  curl -s -o /dev/null "http://127.0.0.1:$rgw_port/" && break
  sleep 1
done
curl -s -o /dev/null "http://127.0.0.1:$rgw_port/" || fail "radosgw did not answer on port $rgw_port within 3 minutes"
# --max-buckets=0: no limit (the default 1000 is reached by enough test runs sharing one instance)
radosgw-admin -c "$conf" user create --uid=tests --display-name=tests --max-buckets=0 \
  --access-key="$access_key" --secret="$secret_key" >/dev/null || fail "creating the S3 user failed"
echo "radosgw: http://127.0.0.1:$rgw_port after $(( $(date +%s) - started )) s (state in $dir)"
