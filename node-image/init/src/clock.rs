//! Setting the clock on boards without an RTC: first the saved-time floor from the data
//! partition (so time never goes back to 1970 and certificates are not "not yet valid" by 50
//! years), then SNTP from the configured servers, before anything uses TLS.

use std::net::{ToSocketAddrs, UdpSocket};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{io, last_os, InitError};

/// Seconds between 1900-01-01 (NTP era 0) and 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// An SNTP client request carrying `sent` as its transmit timestamp.
pub fn sntp_request(sent: SystemTime) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = 0x23; // LI 0, version 4, mode 3 (client)
    p[40..48].copy_from_slice(&to_ntp(sent).to_be_bytes());
    p
}

fn to_ntp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

fn from_ntp(v: u64) -> Option<SystemTime> {
    let secs = (v >> 32).checked_sub(NTP_UNIX_OFFSET)?;
    let nanos = ((v & 0xffff_ffff) * 1_000_000_000) >> 32;
    Some(UNIX_EPOCH + Duration::new(secs, nanos as u32))
}

/// Check a server reply to `request` and return the server's transmit time.
pub fn sntp_parse_reply(request: &[u8; 48], reply: &[u8]) -> Result<SystemTime, String> {
    if reply.len() < 48 {
        return Err(format!("short reply ({} bytes)", reply.len()));
    }
    let mode = reply[0] & 0x7;
    if mode != 4 && mode != 5 {
        return Err(format!("not a server reply (mode {mode})"));
    }
    if reply[1] == 0 {
        return Err("kiss-of-death / unsynchronised server (stratum 0)".into());
    }
    if reply[0] >> 6 == 3 {
        return Err("server clock not synchronised (leap indicator 3)".into());
    }
    if reply[24..32] != request[40..48] {
        return Err("reply does not answer our request (originate timestamp differs)".into());
    }
    let tx = u64::from_be_bytes(reply[40..48].try_into().map_err(|_| "bad reply")?);
    from_ntp(tx).ok_or_else(|| "transmit time before 1970".into())
}

/// Ask `server` (`host` or `host:port`) for the time; returns the estimated current time.
pub fn sntp_query(server: &str, timeout: Duration) -> Result<SystemTime, String> {
    let target = if server.contains(':') {
        server.to_string()
    } else {
        format!("{server}:123")
    };
    let addr = target
        .to_socket_addrs()
        .map_err(|e| format!("{target}: {e}"))?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| format!("{target}: no IPv4 address"))?;
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let sent = SystemTime::now();
    let req = sntp_request(sent);
    sock.send_to(&req, addr)
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut buf = [0u8; 512];
    let (n, _) = sock
        .recv_from(&mut buf)
        .map_err(|e| format!("{addr}: {e}"))?;
    let server_time = sntp_parse_reply(&req, &buf[..n])?;
    let rtt = SystemTime::now().duration_since(sent).unwrap_or_default();
    Ok(server_time + rtt / 2)
}

/// Set the system clock.
pub fn set_clock(t: SystemTime) -> Result<(), InitError> {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let ts = libc::timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: plain syscall with a valid timespec.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        return Err(last_os("clock_settime", "CLOCK_REALTIME"));
    }
    Ok(())
}

/// Read the saved-time floor (seconds since the epoch) from `path`.
pub fn read_floor(path: &Path) -> Option<SystemTime> {
    let text = std::fs::read_to_string(path).ok()?;
    let secs: u64 = text.trim().parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Save `now` as the floor: written to a temp file, fsync'd, renamed and the directory fsync'd,
/// so a power cut (the normal way a Pi is switched off) keeps either the old or the new value.
pub fn save_floor(path: &Path, now: SystemTime) -> Result<(), InitError> {
    use std::io::Write;
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(format!("{secs}\n").as_bytes())
        .map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename", path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync", dir))?;
    }
    Ok(())
}

/// The time to jump to at boot: the floor, if the clock is behind it.
pub fn floor_correction(now: SystemTime, floor: Option<SystemTime>) -> Option<SystemTime> {
    floor.filter(|f| *f > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sntp_roundtrip_against_a_local_server() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 48];
            let (_, from) = server.recv_from(&mut buf).unwrap();
            let mut reply = [0u8; 48];
            reply[0] = 0x24; // version 4, mode 4
            reply[1] = 2;
            reply[24..32].copy_from_slice(&buf[40..48]);
            // 2030-01-01T00:00:00Z
            let tx = (1_893_456_000u64 + NTP_UNIX_OFFSET) << 32;
            reply[40..48].copy_from_slice(&tx.to_be_bytes());
            server.send_to(&reply, from).unwrap();
        });
        let got = sntp_query(&addr.to_string(), Duration::from_secs(2)).unwrap();
        t.join().unwrap();
        let secs = got.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!((1_893_456_000..1_893_456_003).contains(&secs), "{secs}");
    }

    #[test]
    fn rejects_replies_that_do_not_match() {
        let req = sntp_request(SystemTime::now());
        let mut reply = [0u8; 48];
        reply[0] = 0x24;
        reply[1] = 2;
        assert!(sntp_parse_reply(&req, &reply)
            .unwrap_err()
            .contains("originate"));
        reply[24..32].copy_from_slice(&req[40..48]);
        reply[1] = 0;
        assert!(sntp_parse_reply(&req, &reply)
            .unwrap_err()
            .contains("stratum 0"));
        assert!(sntp_parse_reply(&req, &reply[..10]).is_err());
    }

    #[test]
    fn floor_is_saved_and_only_moves_the_clock_forward() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("clock");
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        save_floor(&p, t).unwrap();
        assert_eq!(read_floor(&p), Some(t));
        let early = UNIX_EPOCH + Duration::from_secs(10);
        assert_eq!(floor_correction(early, read_floor(&p)), Some(t));
        assert_eq!(floor_correction(t + Duration::from_secs(5), Some(t)), None);
        assert_eq!(floor_correction(t, None), None);
    }
}
