//! How each secondary core is started, decided from the device tree.
//!
//! The stock Pi 4 firmware (and QEMU) park cores 1-3 on a spin table
//! (`enable-method = "spin-table"`, `cpu-release-addr`); a Trusted Firmware
//! armstub offers PSCI CPU_ON instead. Anything else is refused with a
//! message naming the core and the method.

use crate::dt::host::CpuNode;
use core::fmt;

/// How to start one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMethod {
    /// Write the entry address to `release_addr`, clean it, `sev`.
    SpinTable {
        /// The release address.
        release_addr: u64,
    },
    /// PSCI CPU_ON through SMC (or HVC).
    Psci {
        /// Use HVC rather than SMC.
        hvc: bool,
    },
}

/// Why a core cannot be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmpError<'a> {
    /// spin-table without a release address.
    NoReleaseAddr,
    /// A release address inside memory the hypervisor owns or out of reach.
    BadReleaseAddr(u64),
    /// psci without a usable /psci node.
    NoPsciNode,
    /// Some other method.
    Unsupported(&'a str),
}

impl fmt::Display for SmpError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmpError::NoReleaseAddr => {
                f.write_str("enable-method spin-table without cpu-release-addr")
            }
            SmpError::BadReleaseAddr(a) => write!(
                f,
                "cpu-release-addr {a:#x} is not 8-byte aligned low memory"
            ),
            SmpError::NoPsciNode => {
                f.write_str("enable-method psci but no /psci node with method smc or hvc")
            }
            SmpError::Unsupported("") => f.write_str("no enable-method (need spin-table or psci)"),
            SmpError::Unsupported(m) => write!(
                f,
                "enable-method '{m}' is not supported (need spin-table or psci)"
            ),
        }
    }
}

/// Decides how to start `cpu`. `psci_method` is /psci `method`.
pub fn boot_method<'a>(
    cpu: &CpuNode<'a>,
    psci_method: Option<&str>,
) -> Result<BootMethod, SmpError<'a>> {
    match cpu.enable_method {
        "spin-table" => {
            let a = cpu.release_addr.ok_or(SmpError::NoReleaseAddr)?;
            // The release address must be naturally aligned and in the low
            // page the stub polls (never inside the hypervisor).
            if a % 8 != 0 || a >= 0x1000 * 16 || a == 0 {
                return Err(SmpError::BadReleaseAddr(a));
            }
            Ok(BootMethod::SpinTable { release_addr: a })
        }
        "psci" => match psci_method {
            Some("smc") => Ok(BootMethod::Psci { hvc: false }),
            Some("hvc") => Ok(BootMethod::Psci { hvc: true }),
            _ => Err(SmpError::NoPsciNode),
        },
        other => Err(SmpError::Unsupported(other)),
    }
}

/// PSCI CPU_ON, SMC64 function id (PSCI spec DEN0022, 5.1.4).
pub const PSCI_CPU_ON_64: u64 = 0xc400_0003;

/// The name of a PSCI return code.
pub fn psci_error_name(code: i64) -> &'static str {
    match code {
        0 => "SUCCESS",
        -1 => "NOT_SUPPORTED",
        -2 => "INVALID_PARAMETERS",
        -3 => "DENIED",
        -4 => "ALREADY_ON",
        -5 => "ON_PENDING",
        -6 => "INTERNAL_FAILURE",
        -7 => "NOT_PRESENT",
        -8 => "DISABLED",
        -9 => "INVALID_ADDRESS",
        _ => "unknown PSCI return code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(method: &'static str, release: Option<u64>) -> CpuNode<'static> {
        CpuNode {
            mpidr: 1,
            enable_method: method,
            release_addr: release,
        }
    }

    #[test]
    fn spin_table() {
        assert_eq!(
            boot_method(&cpu("spin-table", Some(0xe0)), None),
            Ok(BootMethod::SpinTable { release_addr: 0xe0 })
        );
        assert_eq!(
            boot_method(&cpu("spin-table", None), None),
            Err(SmpError::NoReleaseAddr)
        );
        assert_eq!(
            boot_method(&cpu("spin-table", Some(0xe1)), None),
            Err(SmpError::BadReleaseAddr(0xe1))
        );
        assert_eq!(
            boot_method(&cpu("spin-table", Some(0x20_0000)), None),
            Err(SmpError::BadReleaseAddr(0x20_0000))
        );
    }

    #[test]
    fn psci() {
        assert_eq!(
            boot_method(&cpu("psci", None), Some("smc")),
            Ok(BootMethod::Psci { hvc: false })
        );
        assert_eq!(
            boot_method(&cpu("psci", None), Some("hvc")),
            Ok(BootMethod::Psci { hvc: true })
        );
        assert_eq!(
            boot_method(&cpu("psci", None), None),
            Err(SmpError::NoPsciNode)
        );
        assert_eq!(
            boot_method(&cpu("psci", None), Some("weird")),
            Err(SmpError::NoPsciNode)
        );
    }

    #[test]
    fn anything_else_is_refused_by_name() {
        let e = boot_method(&cpu("brcm,bcm2836-smp", None), None).unwrap_err();
        assert_eq!(
            std::format!("{e}"),
            "enable-method 'brcm,bcm2836-smp' is not supported (need spin-table or psci)"
        );
        let e = boot_method(&cpu("", None), None).unwrap_err();
        assert_eq!(
            std::format!("{e}"),
            "no enable-method (need spin-table or psci)"
        );
    }

    #[test]
    fn psci_codes() {
        assert_eq!(psci_error_name(-4), "ALREADY_ON");
        assert_eq!(psci_error_name(-99), "unknown PSCI return code");
    }
}
