//! A/B root slots and the boot record that chooses between them.
//!
//! The card has two read-only roots: slot A (partition 2, written by `bramble image build`) and
//! slot B (partition 4, created on first boot). Each slot has its own kernel, initramfs and
//! `cmdline.txt` on the boot partition: slot A at the top level, slot B under `slot-b/`.
//!
//! An upgrade writes the inactive slot and records a one-shot *try* of it in
//! [`BOOT_RECORD_FILE`] on the boot partition. What consumes the try is the board's firmware:
//!
//! * Raspberry Pi 4/5 (and CM4): the `tryboot` flag (`reboot "0 tryboot"`), which the firmware
//!   clears itself, selecting the `[tryboot]` section of `config.txt` (see
//!   [`with_slot_sections`]);
//! * the QEMU `virt` board: `bramble qemu run` plays the firmware and calls
//!   [`BootRecord::firmware_pick`], which decrements the try counter before booting.
//!
//! Init (stage 2) reports which slot it booted ([`BootRecord::on_boot`]): a boot of another slot
//! than the one being tried means the try failed and the firmware fell back. Once the services
//! are healthy it calls [`BootRecord::mark_good`], which makes the tried slot the active one.

use std::fmt;

/// Name of the boot record on the boot partition.
pub const BOOT_RECORD_FILE: &str = "bramble-boot.txt";
/// Line that starts the slot sections Bramble manages at the end of `config.txt`.
pub const CONFIG_TXT_MARKER: &str = "# bramble A/B slots (managed by bramble init; keep last)";

/// One root slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Partition 2, boot files at the top of the boot partition.
    A,
    /// Partition 4, boot files under `slot-b/`.
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// MBR partition number of the slot's root.
    pub fn partition(self) -> u8 {
        match self {
            Slot::A => 2,
            Slot::B => 4,
        }
    }

    /// Directory prefix of the slot's kernel, initramfs and cmdline.txt on the boot partition
    /// (`""` or `"slot-b/"`).
    pub fn boot_dir(self) -> &'static str {
        match self {
            Slot::A => "",
            Slot::B => "slot-b/",
        }
    }

    /// `a` or `b`.
    pub fn letter(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    /// Parse `a`/`b` (any case).
    pub fn parse(s: &str) -> Option<Slot> {
        match s.trim() {
            "a" | "A" => Some(Slot::A),
            "b" | "B" => Some(Slot::B),
            _ => None,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letter())
    }
}

/// The boot record: which slot is known good, which one is being tried and how many boots of
/// it are left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootRecord {
    /// The slot known to work.
    pub active: Slot,
    /// The slot an upgrade asked to try.
    pub trying: Option<Slot>,
    /// Boots of `trying` the firmware may still start (counter firmware only).
    pub tries_left: u32,
    /// The last slot whose try failed (for status).
    pub failed: Option<Slot>,
}

impl Default for BootRecord {
    /// What a freshly built image boots: slot A, nothing being tried.
    fn default() -> Self {
        BootRecord {
            active: Slot::A,
            trying: None,
            tries_left: 0,
            failed: None,
        }
    }
}

/// A malformed boot record line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bramble-boot.txt line {line}: {message}")]
pub struct RecordError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// What init learns when it reports the slot it booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootOutcome {
    /// The active slot booted and nothing is being tried.
    Normal,
    /// The slot under trial booted: mark it good once healthy, or reboot to fall back.
    Trying(Slot),
    /// A try of this slot failed: the firmware booted the active slot instead.
    FellBack(Slot),
}

/// Why an upgrade cannot be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The target is the slot running now.
    #[error("slot {0} is the running slot; an upgrade writes the other one")]
    Running(Slot),
    /// The running slot is itself under trial (not yet marked good).
    #[error("slot {0} is running on trial; wait until it is marked good before another upgrade")]
    Pending(Slot),
}

impl BootRecord {
    /// Parse `key=value` lines (`#` comments). A missing file means [`BootRecord::default`].
    pub fn parse(text: &str) -> Result<BootRecord, RecordError> {
        let mut r = BootRecord::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| RecordError {
                line: i + 1,
                message,
            };
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| err(format!("`{line}` is not key=value")))?;
            let (k, v) = (k.trim(), v.trim());
            let slot = |v: &str| {
                Slot::parse(v).ok_or_else(|| err(format!("{k}: `{v}` is not a slot (a or b)")))
            };
            let opt_slot = |v: &str| {
                if v.is_empty() {
                    Ok(None)
                } else {
                    slot(v).map(Some)
                }
            };
            match k {
                "active" => r.active = slot(v)?,
                "try" => r.trying = opt_slot(v)?,
                "tries" => {
                    r.tries_left = v
                        .parse()
                        .map_err(|_| err(format!("tries: `{v}` is not a number")))?
                }
                "failed" => r.failed = opt_slot(v)?,
                _ => return Err(err(format!("unknown key `{k}`"))),
            }
        }
        if r.trying == Some(r.active) {
            r.trying = None;
        }
        Ok(r)
    }

    /// The file text.
    pub fn render(&self) -> String {
        let opt = |s: Option<Slot>| s.map(Slot::letter).unwrap_or("");
        format!(
            "# Bramble A/B boot record (written by bramble init and the firmware stand-in)\n\
             active={}\ntry={}\ntries={}\nfailed={}\n",
            self.active,
            opt(self.trying),
            self.tries_left,
            opt(self.failed)
        )
    }

    /// The counter firmware's choice (QEMU `virt`): boot the slot under trial while it has tries
    /// left, consuming one; once they are used up, drop the try and boot the active slot.
    /// Returns the slot to boot and the record to write back before booting.
    pub fn firmware_pick(&self) -> (Slot, BootRecord) {
        let mut next = self.clone();
        match self.trying {
            Some(t) if self.tries_left > 0 => {
                next.tries_left -= 1;
                (t, next)
            }
            Some(t) => {
                next.trying = None;
                next.failed = Some(t);
                (self.active, next)
            }
            None => (self.active, next),
        }
    }

    /// Init reports the slot it booted from. Returns the outcome and the record to write back
    /// (a fallback clears the try and remembers the failed slot).
    pub fn on_boot(&self, booted: Slot) -> (BootOutcome, BootRecord) {
        let mut next = self.clone();
        match self.trying {
            Some(t) if t == booted => (BootOutcome::Trying(t), next),
            Some(t) => {
                next.trying = None;
                next.tries_left = 0;
                next.failed = Some(t);
                (BootOutcome::FellBack(t), next)
            }
            None if booted != self.active => {
                // Booted a slot nobody asked for (e.g. the firmware was told directly): keep the
                // record's choice, the next boot goes back to it.
                (BootOutcome::Normal, next)
            }
            None => (BootOutcome::Normal, next),
        }
    }

    /// The booted slot is healthy: if it was under trial it becomes the active slot. Returns
    /// `None` when nothing changes.
    pub fn mark_good(&self, booted: Slot) -> Option<BootRecord> {
        (self.trying == Some(booted)).then_some(BootRecord {
            active: booted,
            trying: None,
            tries_left: 0,
            failed: None,
        })
    }

    /// The running slot is unhealthy while under trial: give up the try so the next boot takes
    /// the active slot (whatever the firmware does with its counter).
    pub fn abandon(&self, booted: Slot) -> Option<BootRecord> {
        (self.trying == Some(booted)).then(|| BootRecord {
            trying: None,
            tries_left: 0,
            failed: Some(booted),
            ..self.clone()
        })
    }

    /// An upgrade has written `target` (not the `running` slot): try it for `tries` boots.
    pub fn schedule(
        &self,
        running: Slot,
        target: Slot,
        tries: u32,
    ) -> Result<BootRecord, ScheduleError> {
        if target == running {
            return Err(ScheduleError::Running(running));
        }
        if self.trying == Some(running) {
            // Writing the other slot now would overwrite the only known-good root.
            return Err(ScheduleError::Pending(running));
        }
        Ok(BootRecord {
            active: running,
            trying: Some(target),
            tries_left: tries,
            failed: None,
        })
    }
}

/// The Pi firmware lines that boot `slot` (kernel, initramfs and command line of its directory).
fn slot_lines(slot: Slot, kernel: &str, initramfs: &str) -> String {
    let d = slot.boot_dir();
    format!("kernel={d}{kernel}\ninitramfs {d}{initramfs} followkernel\ncmdline={d}cmdline.txt\n")
}

/// `config.txt` with Bramble's slot sections at the end: `[all]` boots the active slot, and
/// `[tryboot]` (the Pi 4/5 firmware's one-shot flag set by `reboot "0 tryboot"`) boots the slot
/// under trial, or the active one when nothing is tried. Anything after [`CONFIG_TXT_MARKER`] is
/// replaced; the board's lines before it are kept.
pub fn with_slot_sections(
    config_txt: &str,
    record: &BootRecord,
    kernel: &str,
    initramfs: &str,
) -> String {
    let mut head: String = config_txt
        .lines()
        .take_while(|l| l.trim() != CONFIG_TXT_MARKER)
        // The builder's single-slot lines are superseded by the sections.
        .filter(|l| {
            let t = l.trim();
            !(t.starts_with("kernel=") || t.starts_with("initramfs ") || t.starts_with("cmdline="))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    head.push_str(CONFIG_TXT_MARKER);
    head.push_str("\n[all]\n");
    head.push_str(&slot_lines(record.active, kernel, initramfs));
    head.push_str("[tryboot]\n");
    head.push_str(&slot_lines(
        record.trying.unwrap_or(record.active),
        kernel,
        initramfs,
    ));
    head.push_str("[all]\n");
    head
}

/// A slot's `cmdline.txt` from another slot's: `bramble.root=` points at the slot's partition
/// (same disk signature) and `bramble.slot=` names it.
pub fn cmdline_for_slot(cmdline: &str, slot: Slot) -> String {
    let mut out: Vec<String> = Vec::new();
    for word in cmdline.split_whitespace() {
        if word.starts_with("bramble.slot=") {
            continue;
        }
        if let Some(v) = word.strip_prefix("bramble.root=") {
            let base = v.rsplit_once('-').map(|(b, _)| b).unwrap_or(v);
            if v.starts_with("PARTUUID=") {
                out.push(format!("bramble.root={base}-{:02x}", slot.partition()));
                continue;
            }
        }
        out.push(word.to_string());
    }
    out.push(format!("bramble.slot={slot}"));
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_defaults() {
        assert_eq!(BootRecord::parse("").unwrap(), BootRecord::default());
        let r = BootRecord {
            active: Slot::B,
            trying: Some(Slot::A),
            tries_left: 2,
            failed: None,
        };
        assert_eq!(BootRecord::parse(&r.render()).unwrap(), r);
        let e = BootRecord::parse("active=a\ntry=c\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("try: `c` is not a slot"), "{e}");
        assert!(BootRecord::parse("bogus=1").is_err());
        assert!(BootRecord::parse("tries=x").is_err());
    }

    #[test]
    fn upgrade_that_becomes_healthy_switches_the_active_slot() {
        let r = BootRecord::default();
        let r = r.schedule(Slot::A, Slot::B, 1).unwrap();
        assert_eq!((r.trying, r.tries_left), (Some(Slot::B), 1));
        // Firmware boots B, consuming the try.
        let (slot, r) = r.firmware_pick();
        assert_eq!(slot, Slot::B);
        assert_eq!(r.tries_left, 0);
        let (outcome, r) = r.on_boot(Slot::B);
        assert_eq!(outcome, BootOutcome::Trying(Slot::B));
        let r = r.mark_good(Slot::B).unwrap();
        assert_eq!(r.active, Slot::B);
        assert_eq!(r.trying, None);
        // Every later boot is B.
        let (slot, r2) = r.firmware_pick();
        assert_eq!((slot, &r2), (Slot::B, &r));
        assert_eq!(r.on_boot(Slot::B).0, BootOutcome::Normal);
        assert_eq!(r.mark_good(Slot::B), None);
    }

    #[test]
    fn try_that_never_reaches_init_falls_back_on_the_next_boot() {
        let r = BootRecord::default().schedule(Slot::A, Slot::B, 1).unwrap();
        let (slot, r) = r.firmware_pick();
        assert_eq!(slot, Slot::B);
        // B panicked before init ran; the board resets.
        let (slot, r) = r.firmware_pick();
        assert_eq!(slot, Slot::A);
        assert_eq!(
            (r.active, r.trying, r.failed),
            (Slot::A, None, Some(Slot::B))
        );
        assert_eq!(r.on_boot(Slot::A).0, BootOutcome::Normal);
    }

    #[test]
    fn tryboot_firmware_fallback_is_seen_by_init() {
        // Pi: the firmware clears its own flag, the record still names the try.
        let r = BootRecord::default().schedule(Slot::A, Slot::B, 1).unwrap();
        let (outcome, r) = r.on_boot(Slot::A);
        assert_eq!(outcome, BootOutcome::FellBack(Slot::B));
        assert_eq!(
            (r.active, r.trying, r.failed),
            (Slot::A, None, Some(Slot::B))
        );
    }

    #[test]
    fn unhealthy_try_is_abandoned() {
        let r = BootRecord::default().schedule(Slot::A, Slot::B, 3).unwrap();
        let (_, r) = r.firmware_pick();
        let r = r.abandon(Slot::B).unwrap();
        assert_eq!(r.firmware_pick().0, Slot::A);
        assert_eq!(r.failed, Some(Slot::B));
        assert_eq!(BootRecord::default().abandon(Slot::A), None);
    }

    #[test]
    fn schedule_refuses_the_running_slot() {
        let r = BootRecord::default();
        assert_eq!(
            r.schedule(Slot::A, Slot::A, 1).unwrap_err(),
            ScheduleError::Running(Slot::A)
        );
        // From B (active after an upgrade) the next upgrade goes to A.
        let b = BootRecord {
            active: Slot::B,
            ..Default::default()
        };
        let r = b.schedule(Slot::B, Slot::A, 1).unwrap();
        assert_eq!((r.active, r.trying), (Slot::B, Some(Slot::A)));
        // Running A on trial: the known-good B must not be overwritten.
        assert_eq!(
            r.schedule(Slot::A, Slot::B, 1).unwrap_err(),
            ScheduleError::Pending(Slot::A)
        );
    }

    #[test]
    fn config_txt_gets_all_and_tryboot_sections() {
        let base = "# board\narm_64bit=1\nkernel=vmlinuz\ninitramfs initrd.img followkernel\n";
        let r = BootRecord::default().schedule(Slot::A, Slot::B, 1).unwrap();
        let c = with_slot_sections(base, &r, "vmlinuz", "initrd.img");
        assert_eq!(
            c,
            "# board\narm_64bit=1\n".to_string()
                + CONFIG_TXT_MARKER
                + "\n[all]\nkernel=vmlinuz\ninitramfs initrd.img followkernel\ncmdline=cmdline.txt\n\
                   [tryboot]\nkernel=slot-b/vmlinuz\ninitramfs slot-b/initrd.img followkernel\n\
                   cmdline=slot-b/cmdline.txt\n[all]\n"
        );
        // Rewriting replaces the managed part only.
        let good = r.mark_good(Slot::B).unwrap();
        let c2 = with_slot_sections(&c, &good, "vmlinuz", "initrd.img");
        assert!(c2.starts_with("# board\narm_64bit=1\n"));
        assert_eq!(c2.matches(CONFIG_TXT_MARKER).count(), 1);
        assert!(c2.contains("[all]\nkernel=slot-b/vmlinuz\n"));
        assert!(c2.contains("[tryboot]\nkernel=slot-b/vmlinuz\n"));
    }

    #[test]
    fn cmdline_points_at_the_slot_partition() {
        let a =
            "console=ttyAMA0 bramble.root=PARTUUID=1234abcd-02 bramble.data=PARTUUID=1234abcd-03";
        let b = cmdline_for_slot(a, Slot::B);
        assert_eq!(
            b,
            "console=ttyAMA0 bramble.root=PARTUUID=1234abcd-04 bramble.data=PARTUUID=1234abcd-03 bramble.slot=b"
        );
        assert_eq!(
            cmdline_for_slot(&b, Slot::A),
            "console=ttyAMA0 bramble.root=PARTUUID=1234abcd-02 bramble.data=PARTUUID=1234abcd-03 bramble.slot=a"
        );
    }
}
