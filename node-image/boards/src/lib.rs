//! Board definitions and the node configuration of a Bramble image.
//!
//! * [`BoardConfig`]: one YAML file per board under `board-configs/` (arch, kernel flavour, DTB,
//!   firmware, `config.txt` lines, kernel command line, UART, default resources).
//! * [`NodeConfig`]: the `bramble.yaml` a user drops on the boot partition (role, join address,
//!   hostname, network, time servers, debug toggles).
//!
//! Both are parsed strictly (unknown fields are errors) and validated; every error names the file
//! and the field it is about.

mod board;
mod error;
mod load;
mod node_config;
mod render;
mod slots;

pub use board::{BoardConfig, BootKind, KernelSpec, QemuSpec, Resources, DEFAULT_BOARD_DIR};
pub use error::BoardError;
pub use load::{list_boards, load_board, load_board_file, parse_board, parse_yaml};
pub use node_config::{
    DebugConfig, JoinConfig, NetworkConfig, NetworkMode, NodeApiConfig, NodeConfig, NodeRole,
    NtpConfig, RegistriesConfig, ServiceArgs, StaticAddress,
};
pub use render::{render_cmdline, render_config_txt, RootRef};
pub use slots::{
    cmdline_for_slot, with_slot_sections, BootOutcome, BootRecord, RecordError, ScheduleError,
    Slot, BOOT_RECORD_FILE, CONFIG_TXT_MARKER,
};
