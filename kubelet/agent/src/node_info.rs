//! Facts about this machine the Node object reports: CPUs, memory, disk, kernel, OS image,
//! architecture, boot and machine ids, the InternalIP.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInfo {
    /// Online CPUs.
    pub cpus: u64,
    /// `MemTotal` in bytes.
    pub memory_bytes: u64,
    /// Size of the filesystem holding the kubelet's data dir, bytes.
    pub ephemeral_storage_bytes: u64,
    /// `uname -r`.
    pub kernel_version: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os_image: String,
    /// GOARCH spelling of the CPU architecture (`arm64`, `amd64`, `arm`).
    pub architecture: String,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// `/etc/machine-id`.
    pub machine_id: String,
    /// DMI product UUID when readable, else the machine id.
    pub system_uuid: String,
}

/// GOARCH name of the running binary's architecture.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// `MemTotal` of a `/proc/meminfo` text, bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// `PRETTY_NAME` of an os-release text.
pub fn pretty_name(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// Reads the machine's facts; `data_dir` decides which filesystem is ephemeral storage.
pub fn probe(data_dir: &Path) -> MachineInfo {
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u64;
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total(&m))
        .unwrap_or(0);
    let mut dir = data_dir.to_path_buf();
    while !dir.exists() {
        if !dir.pop() {
            break;
        }
    }
    let ephemeral_storage_bytes = rustix::fs::statvfs(&dir)
        .map(|s| s.f_blocks * s.f_frsize)
        .unwrap_or(0);
    let uname = rustix::system::uname();
    let os_image = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| pretty_name(&s))
        .unwrap_or_else(|| "Bramble".into());
    let machine_id = read_trim("/etc/machine-id").unwrap_or_default();
    MachineInfo {
        cpus,
        memory_bytes,
        ephemeral_storage_bytes,
        kernel_version: uname.release().to_string_lossy().into_owned(),
        os_image,
        architecture: go_arch().to_string(),
        boot_id: read_trim("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
        system_uuid: read_trim("/sys/class/dmi/id/product_uuid")
            .unwrap_or_else(|| machine_id.clone()),
        machine_id,
    }
}

/// The node's InternalIP default: the default-route interface's address, as upstream's
/// `ChooseHostInterface` (IPv4 first; see [`bramble_hostip`], shared with the controller's
/// advertise address), else 127.0.0.1 with a warning.
pub fn default_node_ip() -> IpAddr {
    bramble_hostip::host_ip_or_loopback(
        &bramble_hostip::System,
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "node IP",
    )
}

/// This machine's hostname, lower-cased as upstream's node name default.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo_and_os_release() {
        assert_eq!(
            mem_total("MemTotal:        8041204 kB\nMemFree: 1 kB\n"),
            Some(8041204 * 1024)
        );
        assert_eq!(
            pretty_name("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n")
                .as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
    }

    #[test]
    fn probe_reads_this_machine() {
        let m = probe(Path::new("/tmp/does/not/exist"));
        assert!(m.cpus >= 1);
        assert!(m.memory_bytes > 0);
        assert!(m.ephemeral_storage_bytes > 0);
        assert!(!m.kernel_version.is_empty());
    }
}
