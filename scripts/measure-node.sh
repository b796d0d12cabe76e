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
#   5. boot times of the Bramble node (guest uptime, from the kernel's printk timestamps and the
#      node API's status): kernel start -> PID 1 (/init of the initramfs), and -> node Ready
#      (kubectl from this host through the forwarded API port, polled every 2 s); Bramble's part
#      is PID 1 -> Ready.
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
cat >"$out/bramble.yaml" <<EOF
role: both
hostname: measure-1
network:
  mode: dhcp
  interface: eth0
ntp:
  servers: ['10.0.2.2:9']
  timeout_seconds: 1
api:
  token: $token
EOF
"$host_bramble" image build --board qemu-virt --config "$out/bramble.yaml" --bramble "$a64" \
    -o "$out/node.img" >/dev/null
truncate -s 1G "$out/node.img"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port); node_port=$(free_port)
console="$out/console.log"
# Its own process group, so QEMU (a child of `bramble qemu run`) is stopped with it.
setsid "$host_bramble" qemu run --board virt "$out/node.img" --api-port "$api_port" \
    --forward "$node_port:50000" --memory "$mem" --cpus 2 >"$console" 2>&1 &
qemu_pid=$!
stop_vm() { kill -- -"$qemu_pid" 2>/dev/null || true; }
trap stop_vm EXIT
for _ in $(seq 600); do
    grep -q "certificate sha256" "$console" && break
    sleep 1
done
fp=$(sed -n 's/.*certificate sha256 \([0-9a-f]*\).*/\1/p' "$console" | head -1)
[ -n "$fp" ] || { echo "node API did not come up; console in $console" >&2; exit 1; }
node() { "$host_bramble" node --node "127.0.0.1:$node_port" --token "$token" --fingerprint "$fp" "$@"; }
# Wait for the controller to write the admin kubeconfig (it is up), then for the node to be Ready.
for _ in $(seq 600); do
    node kubeconfig >"$out/admin.kubeconfig" 2>/dev/null && break
    sleep 2
done
ready=""
for _ in $(seq 600); do
    st=$(kubectl --kubeconfig "$out/admin.kubeconfig" --server "https://127.0.0.1:$api_port" \
        get node measure-1 -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
    if [ "$st" = True ]; then
        ready=$(node status | python3 -c 'import json,sys; print(json.load(sys.stdin)["uptime_seconds"])')
        break
    fi
    sleep 2
done
pid1=$(sed -n 's/^\[ *\([0-9.]*\)\] Run \/init as init process.*/\1/p' "$console" | head -1)
if [ -n "$ready" ] && [ -n "$pid1" ]; then
    python3 -c "p,r=$pid1,$ready; print(f'boot (guest uptime): PID 1 at {p:.2f} s, node Ready at {r:.1f} s; PID 1 -> Ready {r-p:.1f} s = {100*(r-p)/r:.0f}% of the boot (Ready polled every 2 s)')" | tee -a "$report"
else
    say "boot: PID 1 at '${pid1:-?}' s, Ready at '${ready:-never (10 min)}' s guest uptime"
fi
say "idling ${idle}s after the controller started"
sleep "$idle"
node status >"$out/status-1.json"
sleep "$window"
node status >"$out/status-2.json"
node logs >"$out/ring.log" || true

python3 - "$out/status-1.json" "$out/status-2.json" "$window" <<'EOF' | tee -a "$report"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
window = float(sys.argv[3])
m = b["memory"]
print(f"virt guest ({m['total_kib']//1024} MiB RAM), role both, uptime {b['uptime_seconds']:.0f} s:")
print(f"  board memory used (MemTotal-MemAvailable): {m['used_kib']/1024:.1f} MiB")
for p in b["processes"][:8]:
    print(f"  RSS {p['rss_kib']/1024:7.1f} MiB  pid {p['pid']:5}  {p['command']}")
dev = lambda s, n: next((d for d in s["block_io"] if d["device"] == n), {"written_bytes": 0})
for n in ("vda3", "vda"):
    w = dev(b, n)["written_bytes"] - dev(a, n)["written_bytes"]
    dt = b["uptime_seconds"] - a["uptime_seconds"]
    print(f"  {n}: {w} bytes written in {dt:.0f} s -> {w*3600/dt/1048576:.2f} MiB/hour (extrapolated linearly from the window)")
EOF
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
grep -E 'MemTotal|MemAvailable' /proc/meminfo | sed 's/^/baseline-/'
poweroff -f
EOF
chmod +x "$rd/init"
(cd "$rd" && find . | cpio -o -H newc --quiet | gzip -9) >"$out/busybox-initrd.cpio.gz"
read -r boot_off boot_len < <(sfdisk --dump "$out/node.img" |
    sed -n 's/.*1 : start= *\([0-9]*\), size= *\([0-9]*\),.*/\1 \2/p')
dd if="$out/node.img" of="$out/boot.vfat" bs=512 skip="$boot_off" count="$boot_len" status=none
mcopy -o -i "$out/boot.vfat" ::/vmlinuz "$out/vmlinuz"
start=$(date +%s.%N)
timeout 300 qemu-system-aarch64 -M virt -cpu cortex-a72 -m "$mem" -smp 2 -nographic -no-reboot -nic none \
    -kernel "$out/vmlinuz" -initrd "$out/busybox-initrd.cpio.gz" -append "console=ttyAMA0 panic=-1 quiet" \
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
EOF
rm -rf "$bb_deb_dir"
say "report: $report"
