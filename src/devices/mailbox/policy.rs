//! Which firmware property tags a VM may use: the tag identifiers of the
//! Raspberry Pi firmware's property interface, the groups a VM's
//! `mailbox =` setting names, and the [`Policy`] built from them.

/// Tag identifiers (Raspberry Pi firmware mailbox property interface).
pub mod tag {
    #![allow(missing_docs)]
    pub const FIRMWARE_REVISION: u32 = 0x0000_0001;
    pub const FIRMWARE_VARIANT: u32 = 0x0000_0002;
    pub const FIRMWARE_HASH: u32 = 0x0000_0003;
    pub const BOARD_MODEL: u32 = 0x0001_0001;
    pub const BOARD_REVISION: u32 = 0x0001_0002;
    pub const BOARD_MAC: u32 = 0x0001_0003;
    pub const BOARD_SERIAL: u32 = 0x0001_0004;
    pub const ARM_MEMORY: u32 = 0x0001_0005;
    pub const VC_MEMORY: u32 = 0x0001_0006;
    pub const CLOCKS: u32 = 0x0001_0007;
    pub const COMMAND_LINE: u32 = 0x0005_0001;
    pub const DMA_CHANNELS: u32 = 0x0006_0001;
    pub const POWER_STATE: u32 = 0x0002_0001;
    pub const TIMING: u32 = 0x0002_0002;
    pub const SET_POWER_STATE: u32 = 0x0002_8001;
    pub const CLOCK_STATE: u32 = 0x0003_0001;
    pub const CLOCK_RATE: u32 = 0x0003_0002;
    pub const VOLTAGE: u32 = 0x0003_0003;
    pub const MAX_CLOCK_RATE: u32 = 0x0003_0004;
    pub const MAX_VOLTAGE: u32 = 0x0003_0005;
    pub const TEMPERATURE: u32 = 0x0003_0006;
    pub const MIN_CLOCK_RATE: u32 = 0x0003_0007;
    pub const MIN_VOLTAGE: u32 = 0x0003_0008;
    pub const TURBO: u32 = 0x0003_0009;
    pub const MAX_TEMPERATURE: u32 = 0x0003_000a;
    pub const ALLOCATE_MEMORY: u32 = 0x0003_000c;
    pub const LOCK_MEMORY: u32 = 0x0003_000d;
    pub const UNLOCK_MEMORY: u32 = 0x0003_000e;
    pub const RELEASE_MEMORY: u32 = 0x0003_000f;
    pub const EXECUTE_CODE: u32 = 0x0003_0010;
    pub const DOMAIN_STATE: u32 = 0x0003_0030;
    pub const GPIO_STATE: u32 = 0x0003_0041;
    pub const GPIO_CONFIG: u32 = 0x0003_0043;
    pub const THROTTLED: u32 = 0x0003_0046;
    pub const CLOCK_RATE_MEASURED: u32 = 0x0003_0047;
    pub const NOTIFY_REBOOT: u32 = 0x0003_0048;
    pub const SET_CLOCK_STATE: u32 = 0x0003_8001;
    pub const SET_CLOCK_RATE: u32 = 0x0003_8002;
    pub const SET_VOLTAGE: u32 = 0x0003_8003;
    pub const SET_TURBO: u32 = 0x0003_8009;
    pub const SET_DOMAIN_STATE: u32 = 0x0003_8030;
    pub const SET_GPIO_STATE: u32 = 0x0003_8041;
    pub const SET_GPIO_CONFIG: u32 = 0x0003_8043;
    pub const FRAMEBUFFER_ALLOCATE: u32 = 0x0004_0001;
}

/// Tag groups a VM's policy allows (configuration names in [`GROUPS`]).
pub mod group {
    /// Identity: firmware revision/variant/hash, board model and
    /// revision, MAC and serial (the VM's own if configured), ARM memory
    /// (the VM's), command line (the VM's).
    pub const INFO: u32 = 1 << 0;
    /// Clock list, clock rates (current, min, max, measured) and states,
    /// turbo, power and domain states, timing (all read-only).
    pub const CLOCKS: u32 = 1 << 1;
    /// Temperature, maximum temperature, throttled state, voltages
    /// (read-only).
    pub const SENSORS: u32 = 1 << 2;
    /// The firmware GPIO expander, read-only (state and configuration).
    pub const GPIO: u32 = 1 << 3;
    /// The firmware GPIO expander, writes (LEDs, camera and regulator
    /// enables: board-wide effects, so never a default).
    pub const GPIO_SET: u32 = 1 << 4;
    /// Setting clock rates and states (board-wide, never a default).
    pub const CLOCKS_SET: u32 = 1 << 5;
}

/// Group names as written in a VM configuration (`mailbox = ...`).
pub const GROUPS: [(&str, u32); 6] = [
    ("info", group::INFO),
    ("clocks", group::CLOCKS),
    ("sensors", group::SENSORS),
    ("gpio", group::GPIO),
    ("gpio-set", group::GPIO_SET),
    ("clocks-set", group::CLOCKS_SET),
];

/// The groups a VM gets when its configuration says nothing: everything
/// read-only.
pub const DEFAULT_GROUPS: u32 = group::INFO | group::CLOCKS | group::SENSORS | group::GPIO;

/// The group of a tag that may be forwarded or answered at all (None:
/// never, whatever the policy: memory allocation and locking, executing
/// VideoCore code, framebuffer, voltages and turbo, power, DMA channels).
pub fn group_of(id: u32) -> Option<u32> {
    use tag::*;
    Some(match id {
        FIRMWARE_REVISION | FIRMWARE_VARIANT | FIRMWARE_HASH | BOARD_MODEL | BOARD_REVISION
        | BOARD_MAC | BOARD_SERIAL | ARM_MEMORY | COMMAND_LINE => group::INFO,
        CLOCKS | CLOCK_STATE | CLOCK_RATE | MAX_CLOCK_RATE | MIN_CLOCK_RATE
        | CLOCK_RATE_MEASURED | TURBO | POWER_STATE | DOMAIN_STATE | TIMING => group::CLOCKS,
        TEMPERATURE | MAX_TEMPERATURE | THROTTLED | VOLTAGE | MAX_VOLTAGE | MIN_VOLTAGE => {
            group::SENSORS
        }
        GPIO_STATE | GPIO_CONFIG => group::GPIO,
        SET_GPIO_STATE | SET_GPIO_CONFIG => group::GPIO_SET,
        SET_CLOCK_STATE | SET_CLOCK_RATE => group::CLOCKS_SET,
        _ => return None,
    })
}

/// The firmware GPIO expander's first pin number in the SET_GPIO tags.
pub const EXPANDER_BASE: u32 = 128;
/// Expander pins no VM may ever drive (bits: pin - 128): on a Pi 4B
/// 131 is the board's GLOBAL_RESET, 132 VDD_SD_IO_SEL (1.8 V on the SD
/// card) and 134 SD_PWR_ON (the card's power), under the hypervisor's
/// own use of the card.
pub const FORBIDDEN_PINS: u8 = 1 << 3 | 1 << 4 | 1 << 6;

/// Which tags one VM may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Allowed [`group`]s.
    pub groups: u32,
    /// The expander pins `gpio-set` may drive (bit k: pin 128 + k; never
    /// [`FORBIDDEN_PINS`]). None unless the configuration lists them.
    pub gpio_pins: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            groups: DEFAULT_GROUPS,
            gpio_pins: 0,
        }
    }
}

impl Policy {
    /// Parses a group list (`info clocks sensors`, commas allowed; `none`
    /// for no tags at all). The unknown word is the error.
    pub fn parse(s: &str) -> Result<Policy, &str> {
        let mut groups = 0;
        for w in s.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
            if w == "none" {
                continue;
            }
            groups |= GROUPS
                .iter()
                .find(|(n, _)| *n == w)
                .map(|(_, g)| *g)
                .ok_or(w)?;
        }
        Ok(Policy {
            groups,
            gpio_pins: 0,
        })
    }

    /// Whether tag `id` may be used.
    pub fn allows(&self, id: u32) -> bool {
        group_of(id).is_some_and(|g| self.groups & g != 0)
    }

    /// Whether a SET_GPIO tag may drive `pin`: one the VM lists, never a
    /// forbidden one.
    pub fn may_set_pin(&self, pin: u32) -> bool {
        pin.checked_sub(EXPANDER_BASE)
            .filter(|&k| k < 8)
            .is_some_and(|k| self.gpio_pins & !FORBIDDEN_PINS & (1 << k) != 0)
    }
}
