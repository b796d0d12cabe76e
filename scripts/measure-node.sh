#!/usr/bin/env bash
# Measures a Bramble node under QEMU (software emulation of the `virt` board):
#   1. image size per board (bramble image build with the static aarch64 binary),
#   2. a single-node cluster (role both: controller + kubelet) booted from the virt image:
#      board memory used (MemTotal - MemAvailable) and each process's RSS, from the node API's
#      status (/proc in the guest) after the node has idled IDLE_SECONDS,
#   3. bytes written to the data partition (vda3, /sys/class/block/vda3/stat in the guest) over a
#      WINDOW_SECONDS window after that idle period, extrapolated to one hour (said in the output),
#   4. the baseline: the same kernel booting a plain busybox /init (initramfs), its memory used and
#      uptime when /init runs,
#   5. boot times of the Bramble node (guest uptime, from the kernel's printk timestamps, init's
#      console lines, which carry the same clock, and the node API's status): kernel start ->
#      PID 1 (/init of the initramfs), and -> node Ready (kubectl from this host through the
#      forwarded API port, polled every 0.2 s); Bramble's part is PID 1 -> Ready. The timeline
#      of that part: init's steps from the console, the controller's and kubelet's from their
#      log lines (wall clock, mapped to uptime with the status call's uptime and time), for the
#      first boot (data partition grown, PKI and store created) and for a reboot,
#   6. the node's clock comes from an SNTP server this script runs on 127.0.0.1 (10.0.2.2 in
#      the guest), as a board's would from the LAN, not from a timeout.
#
# Usage: scripts/measure-node.sh [OUT_DIR]       (default: target/measure-node)
# Environment: WINDOW_SECONDS (default 600), IDLE_SECONDS (default 120), MEMORY_MIB (default 1024),
#              BOARDS (default: every board-configs/*.yaml), BRAMBLE_AARCH64_BINARY,
#              BRAMBLE_HOST_BINARY (default: cargo build -p bramble, target/debug/bramble).
# Needs: scripts/build-aarch64.sh run first, qemu-system-arm, mtools, cpio, gzip, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-target/measure-node}")"
window=${WINDOW_SECONDS:-600}
idle=${IDLE_SECONDS:-120}
mem=${MEMORY_MIB:-1024}
a64="${BRAMBLE_AARCH64_BINARY:-target/aarch64-unknown-linux-musl/release/bramble}"
mkdir -p "$out"
[ -x "$a64" ] || { echo "$a64 missing: run scripts/build-aarch64.sh" >&2; exit 1; }

# The host `bramble` (image build, qemu run, node client): BRAMBLE_HOST_BINARY or a debug build.
host_bramble="${BRAMBLE_HOST_BINARY:-}"
if [ -z "$host_bramble" ]; then
    cargo build --locked -q -p bramble
    host_bramble=target/debug/bramble
fi
report="$out/report.txt"
: >"$report"
say() { echo "$*" | tee -a "$report"; }

say "bramble aarch64 binary: $(stat -c %s "$a64") bytes ($(file -b "$a64" | cut -d, -f1-2))"

# 1. Image size per board.
boards=${BOARDS:-$(ls board-configs/*.yaml | xargs -n1 basename | sed 's/\.yaml$//' | grep -v README)}
say "image sizes (MiB, whole image / squashfs root):"
for b in $boards; do
    # All of the output (a `| head` would close the pipe under bramble's later lines).
    line=$("$host_bramble" image build --board "$b" --bramble "$a64" -o "$out/$b.img" 2>/dev/null)
    line=${line%%$'\n'*}
    size=$(( $(stat -c %s "$out/$b.img") / 1048576 ))
    squash=$(echo "$line" | sed -n 's/.*squashfs \([0-9.]*\) MiB.*/\1/p')
    say "  $b: $size MiB (squashfs $squash MiB)"
    [ "$b" = qemu-virt ] || rm -f "$out/$b.img"
done

# 2./3. Single-node cluster on the virt board.
token="measure-node-token-$(head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# SNTP on 127.0.0.1 answering with this host's time (the guest reaches it as 10.0.2.2).
ntp_port_file="$out/ntp.port"; rm -f "$ntp_port_file"
python3 - "$ntp_port_file" <<'EOF' &
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
def ntp(t):
    return struct.pack(">II", int(t) + 2208988800, int((t % 1) * 2**32))
while True:
    req, peer = s.recvfrom(512)
    if len(req) < 48:
        continue
    now = time.time()
    s.sendto(bytes([0x24, 1, 4, 0xEC]) + bytes(8) + b"LOCL" + ntp(now) + req[40:48] + ntp(now) + ntp(time.time()), peer)
EOF
ntp_pid=$!
for _ in $(seq 50); do [ -s "$ntp_port_file" ] && break; sleep 0.1; done
ntp_port=$(cat "$ntp_port_file")
cat >"$out/bramble.yaml" <<EOF
role: both
hostname: measure-1
network:
  mode: dhcp
  interface: eth0
ntp:
  servers: ['10.0.2.2:$ntp_port']
  timeout_seconds: 2
api:
  token: $token
EOF
"$host_bramble" image build --board qemu-virt --config "$out/bramble.yaml" --bramble "$a64" \
    -o "$out/node.img" >/dev/null
truncate -s 1G "$out/node.img"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port); node_port=$(free_port)
qemu_pid=""
stop_vm() { [ -z "$qemu_pid" ] || kill -- -"$qemu_pid" 2>/dev/null || true; }
trap 'stop_vm; kill "$ntp_pid" 2>/dev/null || true' EXIT
node() { "$host_bramble" node --node "127.0.0.1:$node_port" --token "$token" --fingerprint "$fp" "$@"; }

# boot N: start the board, wait for node Ready (on a reboot: a Ready heartbeat from after the
# start), write boot-N.json (PID 1 and Ready uptimes, the status at Ready) and print the
# timeline.
boot() {
    local n=$1 console="$out/console-$1.log" started
    started=$(date +%s)
    # Its own process group, so QEMU (a child of `bramble qemu run`) is stopped with it.
    setsid "$host_bramble" qemu run --board virt "$out/node.img" --api-port "$api_port" \
        --forward "$node_port:50000" --memory "$mem" --cpus 2 >"$console" 2>&1 &
    qemu_pid=$!
    fp=""
    for _ in $(seq 600); do
        fp=$(sed -n 's/.*certificate sha256 \([0-9a-f]*\).*/\1/p' "$console" | head -1)
        [ -n "$fp" ] && break
        sleep 1
    done
    [ -n "$fp" ] || { echo "node API did not come up; console in $console" >&2; exit 1; }
    # The controller writes the admin kubeconfig once it is up.
    for _ in $(seq 600); do
        node kubeconfig >"$out/admin.kubeconfig" 2>/dev/null && break
        sleep 0.5
    done
    local ready=""
    for _ in $(seq 3000); do
        # Ready=True with a heartbeat of this boot (a reboot finds the last boot's Ready).
        if kubectl --kubeconfig "$out/admin.kubeconfig" --server "https://127.0.0.1:$api_port" \
            get node measure-1 -o json 2>/dev/null | python3 -c '
import json, sys, datetime
c = [c for c in json.load(sys.stdin)["status"].get("conditions", []) if c["type"] == "Ready"]
hb = c and datetime.datetime.fromisoformat(c[0]["lastHeartbeatTime"].replace("Z", "+00:00")).timestamp()
sys.exit(0 if c and c[0]["status"] == "True" and hb >= float(sys.argv[1]) else 1)' "$started" 2>/dev/null; then
            ready=1
            break
        fi
        sleep 0.2
    done
    [ -n "$ready" ] || { echo "boot $n: node not Ready in 10 min; console in $console" >&2; exit 1; }
    local host_now
    host_now=$(date +%s.%N)
    node status >"$out/status-ready-$n.json"
    node logs >"$out/ring-$n.log" || true
    python3 - "$console" "$out/status-ready-$n.json" "$out/ring-$n.log" "$host_now" "$n" <<'EOF' | tee -a "$report"
import datetime, json, re, sys
console, status, ring, host_now, n = sys.argv[1:6]
st = json.load(open(status))
up_now = st["uptime_seconds"]
text = open(console, errors="replace").read()
def first(pat):
    m = re.search(pat, text, re.M)
    return float(m.group(1)) if m else None
# PID 1: init's first line, stamped with CLOCK_BOOTTIME as /proc/uptime (the kernel's printk
# clock can run some 0.3 s apart under emulation); the kernel's line for an older init.
pid1 = first(r"^\[ *([0-9.]+)\] bramble-init: stage 1") or first(r"^\[ *([0-9.]+)\] Run /init as init process")
# Ready: the poll saw it at most ~0.3 s before the status call; the status call's uptime is
# the figure (an upper bound by the poll interval and one round trip).
ready = up_now
print(f"boot {n}: PID 1 at {pid1:.2f} s, node Ready at {ready:.2f} s guest uptime; "
      f"PID 1 -> Ready {ready - pid1:.2f} s = {100 * (ready - pid1) / ready:.0f}% of the boot")
events = [(float(t), "init: " + m) for t, m in re.findall(r"^\[ *([0-9.]+)\] bramble-init: (.*)$", text, re.M)]
# Service lines carry the wall clock (set from this host's SNTP): uptime = now's uptime -
# (host now - line time).
keys = ("opened store", "created cluster CA", "issued certificate", "node kubeconfig", "API server listening",
        "caches synced", "kubelet running", "node registered", "allocated pod CIDR", "pod CIDRs known",
        "wrote default CNI", "installed serving certificate", "workload controllers started",
        "cluster DNS listening", "network controllers started", "controller started", "pod network:",
        "node status", "starting controllers", "Error")
ansi = re.compile(r"\x1b\[[0-9;]*m")
for line in open(ring, errors="replace"):
    line = ansi.sub("", line)
    m = re.match(r"\s*\d+ \[(controller|kubelet)\] (\d{4}-\d\d-\d\dT[0-9:.]+)Z\s+\w+\s+(.*)$", line)
    if not m or not any(k in m.group(3) for k in keys):
        continue
    wall = datetime.datetime.fromisoformat(m.group(2) + "+00:00").timestamp()
    events.append((up_now - (float(host_now) - wall), f"{m.group(1)}: {m.group(3)[:110]}"))
events.sort()
# When the API stored Ready=True: the kubelet's log line of that report (the poll above adds
# its interval and kubectl's start to the figure; this one has neither).
stored = [t for t, what in events if "Ready changed" in what and "ready=true" in what]
if stored:
    print(f"boot {n}: Ready stored at {stored[0]:.2f} s (kubelet's report); PID 1 -> stored Ready "
          f"{stored[0] - pid1:.2f} s = {100 * (stored[0] - pid1) / stored[0]:.0f}% of the boot")
for t, what in events:
    print(f"    {t:7.2f} s  {what}")
json.dump({"pid1": pid1, "ready": ready}, open(status.replace("status-ready", "boot"), "w"))
EOF
}

boot 1
say "idling ${idle}s after Ready"
sleep "$idle"
node status >"$out/status-1.json"
sleep "$window"
node status >"$out/status-2.json"

python3 - "$out/status-1.json" "$out/status-2.json" "$window" <<'EOF' | tee -a "$report"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
window = float(sys.argv[3])
m = b["memory"]
print(f"virt guest ({m['total_kib']//1024} MiB RAM), role both, uptime {b['uptime_seconds']:.0f} s:")
print(f"  board memory used (MemTotal-MemAvailable): {m['used_kib']/1024:.1f} MiB")
bd = m.get("breakdown", {})
if bd:
    print("  where (/proc/meminfo, MiB): " + ", ".join(f"{k} {v/1024:.1f}" for k, v in bd.items()))
for p in b["processes"][:8]:
    anon = f" (anon {p['anon_kib']/1024:.1f})" if "anon_kib" in p else ""
    print(f"  RSS {p['rss_kib']/1024:7.1f} MiB{anon}  pid {p['pid']:5}  {p['command']}")
dev = lambda s, n: next((d for d in s["block_io"] if d["device"] == n), {"written_bytes": 0})
for n in ("vda3", "vda"):
    w = dev(b, n)["written_bytes"] - dev(a, n)["written_bytes"]
    dt = b["uptime_seconds"] - a["uptime_seconds"]
    print(f"  {n}: {w} bytes written in {dt:.0f} s -> {w*3600/dt/1048576:.2f} MiB/hour (extrapolated linearly from the window)")
EOF
node logs >"$out/ring.log" || true

# The same board rebooted (store, PKI and grown data partition already there).
node reboot >/dev/null || true
for _ in $(seq 120); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
stop_vm
wait "$qemu_pid" 2>/dev/null || true
boot 2
stop_vm
wait "$qemu_pid" 2>/dev/null || true

# 4. Baseline: the same kernel with a plain busybox /init.
bb_deb_dir=$(mktemp -d)
(cd "$bb_deb_dir" && apt-get -q -o APT::Sandbox::User="$(id -un)" download busybox-static:arm64 >/dev/null)
dpkg -x "$bb_deb_dir"/busybox-static_*.deb "$bb_deb_dir/x"
rd="$out/busybox-initrd"; rm -rf "$rd"; mkdir -p "$rd"/{bin,proc,sys,dev}
cp "$bb_deb_dir/x/bin/busybox" "$rd/bin/busybox"
for a in sh mount cat poweroff sleep; do ln -sf busybox "$rd/bin/$a"; done
cat >"$rd/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
echo "baseline-uptime $(cat /proc/uptime)"
sed 's/^/baseline-/' /proc/meminfo
poweroff -f
EOF
chmod +x "$rd/init"
(cd "$rd" && find . | cpio -o -H newc --quiet | gzip -9) >"$out/busybox-initrd.cpio.gz"
read -r boot_off boot_len < <(sfdisk --dump "$out/node.img" |
    sed -n 's/.*1 : start= *\([0-9]*\), size= *\([0-9]*\),.*/\1 \2/p')
dd if="$out/node.img" of="$out/boot.vfat" bs=512 skip="$boot_off" count="$boot_len" status=none
mcopy -o -i "$out/boot.vfat" ::/vmlinuz "$out/vmlinuz"
# The board's kernel command line without Bramble's own parameters.
cmdline=$(mtype -i "$out/boot.vfat" ::/cmdline.txt | tr -d '\r\n' | tr ' ' '\n' | grep -v '^bramble\.' | paste -sd' ')
say "baseline kernel command line: $cmdline"
start=$(date +%s.%N)
timeout 300 qemu-system-aarch64 -M virt -cpu cortex-a72 -m "$mem" -smp 2 -nographic -no-reboot -nic none \
    -kernel "$out/vmlinuz" -initrd "$out/busybox-initrd.cpio.gz" -append "$cmdline" \
    >"$out/baseline.log" 2>&1 || true
end=$(date +%s.%N)
python3 - "$out/baseline.log" "$start" "$end" <<'EOF' | tee -a "$report"
import re, sys
t = open(sys.argv[1], errors="replace").read()
up = float(re.search(r"baseline-uptime ([0-9.]+)", t).group(1))
tot = int(re.search(r"baseline-MemTotal:\s+(\d+)", t).group(1))
av = int(re.search(r"baseline-MemAvailable:\s+(\d+)", t).group(1))
print(f"baseline (same kernel, busybox /init): /init at {up:.2f} s guest uptime, "
      f"{float(sys.argv[3])-float(sys.argv[2]):.1f} s wall to poweroff; memory used {(tot-av)/1024:.1f} MiB of {tot//1024} MiB")
f = lambda k: int(re.search(rf"baseline-{k}:\s+(\d+)", t).group(1)) / 1024
print("  where (/proc/meminfo, MiB): " + ", ".join(f"{k} {f(k):.1f}" for k in ("MemFree", "Cached", "Shmem", "Slab", "SUnreclaim", "KernelStack", "VmallocUsed")))
EOF
rm -rf "$bb_deb_dir"
say "report: $report"
