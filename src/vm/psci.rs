//! PSCI 1.1 and SMCCC 1.1 for guests (ARM DEN 0022D, DEN 0028): the call
//! decoder and the vCPU power-state machine. Pure logic: the caller holds
//! the VM's power-state lock and carries out the [`Outcome`] (starting a
//! core, stopping the VM).

use crate::vm::ram::RamMap;

/// Function identifiers.
pub mod fid {
    /// SMCCC_VERSION.
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    /// SMCCC_ARCH_FEATURES.
    pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
    /// SMCCC_ARCH_WORKAROUND_1 (Spectre v2, branch predictor invalidation).
    pub const ARCH_WORKAROUND_1: u32 = 0x8000_8000;
    /// SMCCC_ARCH_WORKAROUND_2 (Spectre v4, speculative store bypass).
    pub const ARCH_WORKAROUND_2: u32 = 0x8000_7fff;
    /// SMCCC_ARCH_WORKAROUND_3 (Spectre-BHB).
    pub const ARCH_WORKAROUND_3: u32 = 0x8000_3fff;
    /// PSCI_VERSION.
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    /// CPU_SUSPEND (SMC32).
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    /// CPU_SUSPEND (SMC64).
    pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
    /// CPU_OFF.
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// CPU_ON (SMC32).
    pub const CPU_ON_32: u32 = 0x8400_0003;
    /// CPU_ON (SMC64).
    pub const CPU_ON_64: u32 = 0xc400_0003;
    /// AFFINITY_INFO (SMC32).
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    /// AFFINITY_INFO (SMC64).
    pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
    /// MIGRATE_INFO_TYPE.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// SYSTEM_OFF.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// SYSTEM_RESET.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// PSCI_FEATURES.
    pub const PSCI_FEATURES: u32 = 0x8400_000a;
    /// pivisor's exit count (a vendor-specific hypervisor service call,
    /// SMC64): x1 = 0 for all of the calling vCPU's exits since its VM
    /// started, 1 + a kind for one kind (`trap::ExitKind`); x0 = the
    /// count, or INVALID_PARAMETERS for another selector.
    pub const PIVISOR_EXIT_COUNT: u32 = 0xc600_0001;
}

/// PSCI return codes.
pub mod ret {
    /// SUCCESS.
    pub const SUCCESS: i64 = 0;
    /// NOT_SUPPORTED (also SMCCC's "unknown function").
    pub const NOT_SUPPORTED: i64 = -1;
    /// INVALID_PARAMETERS.
    pub const INVALID_PARAMETERS: i64 = -2;
    /// ALREADY_ON.
    pub const ALREADY_ON: i64 = -4;
    /// ON_PENDING.
    pub const ON_PENDING: i64 = -5;
    /// INVALID_ADDRESS.
    pub const INVALID_ADDRESS: i64 = -9;
}

/// PSCI 1.1, as returned by PSCI_VERSION.
pub const PSCI_VERSION_1_1: u64 = 0x0001_0001;
/// SMCCC 1.1, as returned by SMCCC_VERSION.
pub const SMCCC_VERSION_1_1: u64 = 0x0001_0001;
/// MIGRATE_INFO_TYPE: no Trusted OS that needs migrating.
pub const MIGRATE_NOT_NEEDED: u64 = 2;

/// A vCPU's power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Power {
    /// Off: waits for CPU_ON.
    #[default]
    Off,
    /// CPU_ON accepted; the core has not entered the guest yet.
    OnPending {
        /// Entry point (IPA).
        entry: u64,
        /// Context id, passed in x0.
        context: u64,
    },
    /// Running guest code.
    On,
}

/// The MPIDR a guest sees for vCPU `index` (VMPIDR_EL2): Aff0 = index,
/// bit 31 RES1, uniprocessor bit clear.
pub fn vmpidr(index: usize) -> u64 {
    (1 << 31) | index as u64
}

/// The vCPU an affinity value names, if any (Aff3..Aff1 must be zero;
/// bits 63:40 are not MPIDR fields and must be zero too, or the value
/// names no CPU: found by the hostile suite, which started vCPU 1 with
/// 1 << 40 | 1; bits 31:24, U and MT, are ignored).
pub fn target_vcpu(mpidr: u64, count: usize) -> Option<usize> {
    if mpidr >> 40 != 0 {
        return None;
    }
    let aff = mpidr & 0xff_00ff_ffff;
    (aff < count as u64).then_some(aff as usize)
}

/// What the caller must do after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Put this in x0 and return to the guest.
    Return(u64),
    /// CPU_ON accepted for this vCPU: wake its core, return SUCCESS.
    Started(usize),
    /// CPU_OFF: this vCPU is off; do not return to it.
    Off,
    /// CPU_SUSPEND: wait for an interrupt, then return SUCCESS.
    Suspend,
    /// SYSTEM_OFF: stop the whole VM.
    SystemOff,
    /// SYSTEM_RESET: reload and restart the VM.
    SystemReset,
    /// Not a function this hypervisor knows: NOT_SUPPORTED in x0, and the
    /// caller logs it (rate-limited).
    Unknown,
    /// pivisor's exit count for the calling vCPU, selector in x1.
    ExitCount(u64),
    /// An optional service every Linux probes at boot (SMCCC TRNG, the
    /// vendor-specific hypervisor service UID and its queries): not
    /// offered, NOT_SUPPORTED in x0, nothing worth a warning.
    Absent,
}

/// Whether function `x0` reads or changes the vCPUs' power states (the
/// others are answered without taking the power-state lock).
pub fn uses_power_state(x0: u64) -> bool {
    // CPU_OFF, CPU_ON and AFFINITY_INFO are 0x8400_0002..=4 and their
    // SMC64 twins (bit 30); a range check, as this runs on every call.
    x0 >> 32 == 0 && (x0 as u32 & !(1 << 30)).wrapping_sub(fid::CPU_OFF) < 3
}

/// What the firmware below the hypervisor (EL3: Trusted Firmware, when
/// the board boots with it) offers that guests may use through it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Services {
    /// SMCCC_ARCH_WORKAROUND_1 (the Cortex-A72's Spectre variant 2
    /// mitigation: invalidate the branch predictor).
    pub workaround_1: bool,
}

impl Services {
    /// What the firmware's answers to SMCCC_VERSION and to
    /// SMCCC_ARCH_FEATURES(ARCH_WORKAROUND_1) mean: the call exists from
    /// SMCCC 1.1 on, and is implemented when the features query returns
    /// 0 or more (SMCCC 1.1+, ARM DEN 0028).
    pub fn from_firmware(version: i64, wa1_features: Option<i64>) -> Self {
        let v11 = version >= SMCCC_VERSION_1_1 as i64;
        Services {
            workaround_1: v11 && wa1_features.is_some_and(|f| f >= 0),
        }
    }
}

/// Whether the call in `x0` is one the hypervisor passes on to the
/// firmware (SMC) for the guest: ARCH_WORKAROUND_1 when EL3 implements
/// it. The guest gets SUCCESS (0) in x0.
pub fn forwards(x0: u64, fw: Services) -> bool {
    fw.workaround_1 && x0 == u64::from(fid::ARCH_WORKAROUND_1)
}

/// The answer to a call that depends on its arguments alone (versions,
/// features, migration type), or None for every other call. The exit
/// path answers these on a short path: no decode, no locks, no VM state.
/// `fw`: what the firmware offers (SMCCC_ARCH_FEATURES says so).
pub fn constant_answer(x0: u64, x1: u64, fw: Services) -> Option<u64> {
    use fid::*;
    if x0 >> 32 != 0 {
        return None;
    }
    if x0 as u32 == SMCCC_ARCH_FEATURES && x1 as u32 == ARCH_WORKAROUND_1 && fw.workaround_1 {
        return Some(ret::SUCCESS as u64);
    }
    match x0 as u32 {
        SMCCC_VERSION | SMCCC_ARCH_FEATURES | PSCI_VERSION | PSCI_FEATURES | MIGRATE_INFO_TYPE => {
            match call([x0, x1, 0, 0], 0, &mut [], 0) {
                Outcome::Return(x) => Some(x),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether `f` is an optional SMCCC service a guest merely probes for.
pub fn is_optional_probe(f: u32) -> bool {
    matches!(f, 0x8400_0050..=0x8400_0053 | 0xc400_0050..=0xc400_0053 | 0x8600_ff00..=0x8600_ff03)
}

fn r(code: i64) -> Outcome {
    Outcome::Return(code as u64)
}

/// True if `f` is a PSCI or SMCCC function this implementation supports
/// (the PSCI_FEATURES answer).
pub fn implemented(f: u32) -> bool {
    use fid::*;
    matches!(
        f,
        PSCI_VERSION
            | CPU_SUSPEND_32
            | CPU_SUSPEND_64
            | CPU_OFF
            | CPU_ON_32
            | CPU_ON_64
            | AFFINITY_INFO_32
            | AFFINITY_INFO_64
            | MIGRATE_INFO_TYPE
            | SYSTEM_OFF
            | SYSTEM_RESET
            | PSCI_FEATURES
            | SMCCC_VERSION
    )
}

/// One call from vCPU `me` with x0..x3 = `regs`, in a VM whose vCPUs are
/// in `power` and whose RAM is `ram`.
pub fn call(regs: [u64; 4], me: usize, power: &mut [Power], ram: impl RamMap) -> Outcome {
    use fid::*;
    // The function id is w0; SMC32 calls take 32-bit arguments.
    let f = regs[0] as u32;
    let wide = f & (1 << 30) != 0;
    let arg = |i: usize| if wide { regs[i] } else { regs[i] & 0xffff_ffff };
    if regs[0] >> 32 != 0 {
        return Outcome::Unknown;
    }
    match f {
        SMCCC_VERSION => Outcome::Return(SMCCC_VERSION_1_1),
        SMCCC_ARCH_FEATURES => match arg(1) as u32 {
            SMCCC_VERSION | SMCCC_ARCH_FEATURES => r(ret::SUCCESS),
            // No firmware mitigation exists to call (unless EL3 offers
            // one: `constant_answer` with `Services`): say so, so that
            // guests neither rely on it nor pay an HVC per kernel entry.
            _ => r(ret::NOT_SUPPORTED),
        },
        PSCI_VERSION => Outcome::Return(PSCI_VERSION_1_1),
        PSCI_FEATURES => {
            let q = arg(1);
            if q >> 32 == 0 && implemented(q as u32) {
                // CPU_SUSPEND: original power_state format, no OS-initiated
                // mode, so 0 for every supported function.
                r(ret::SUCCESS)
            } else {
                r(ret::NOT_SUPPORTED)
            }
        }
        MIGRATE_INFO_TYPE => Outcome::Return(MIGRATE_NOT_NEEDED),
        CPU_SUSPEND_32 | CPU_SUSPEND_64 => Outcome::Suspend,
        CPU_OFF => {
            if let Some(p) = power.get_mut(me) {
                *p = Power::Off;
            }
            Outcome::Off
        }
        CPU_ON_32 | CPU_ON_64 => {
            let Some(t) = target_vcpu(arg(1), power.len()) else {
                return r(ret::INVALID_PARAMETERS);
            };
            match power[t] {
                Power::On => return r(ret::ALREADY_ON),
                Power::OnPending { .. } => return r(ret::ON_PENDING),
                Power::Off => {}
            }
            let entry = arg(2);
            if !entry.is_multiple_of(4) || !ram.is_ram(entry, 4) {
                return r(ret::INVALID_ADDRESS);
            }
            power[t] = Power::OnPending {
                entry,
                context: arg(3),
            };
            Outcome::Started(t)
        }
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => {
            if arg(2) != 0 {
                return r(ret::INVALID_PARAMETERS);
            }
            match target_vcpu(arg(1), power.len()) {
                None => r(ret::INVALID_PARAMETERS),
                Some(t) => Outcome::Return(match power[t] {
                    Power::On => 0,
                    Power::Off => 1,
                    Power::OnPending { .. } => 2,
                }),
            }
        }
        SYSTEM_OFF => Outcome::SystemOff,
        SYSTEM_RESET => Outcome::SystemReset,
        PIVISOR_EXIT_COUNT => Outcome::ExitCount(arg(1)),
        f if is_optional_probe(f) => Outcome::Absent,
        _ => Outcome::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::fid::*;
    use super::*;

    const RAM: u64 = 384 << 20;

    fn on(power: &mut [Power], me: usize, target: u64, entry: u64, ctx: u64) -> Outcome {
        call([CPU_ON_64 as u64, target, entry, ctx], me, power, RAM)
    }

    #[test]
    fn calls_without_power_state_need_no_power_vector() {
        // The exit path answers these without the power-state lock, with
        // an empty vector: they must give the same answer as with one.
        for f in [
            SMCCC_VERSION,
            SMCCC_ARCH_FEATURES,
            PSCI_VERSION,
            PSCI_FEATURES,
            MIGRATE_INFO_TYPE,
            CPU_SUSPEND_64,
            SYSTEM_OFF,
            SYSTEM_RESET,
            PIVISOR_EXIT_COUNT,
            0x8600_ff01,
            0xdead_beef,
        ] {
            assert!(!uses_power_state(f as u64), "{f:#x}");
            let regs = [f as u64, 1, 0x8_0000, 0];
            let mut p = [Power::On, Power::Off];
            assert_eq!(
                call(regs, 0, &mut [], RAM),
                call(regs, 0, &mut p, RAM),
                "{f:#x}"
            );
        }
        for f in [
            CPU_OFF,
            CPU_ON_32,
            CPU_ON_64,
            AFFINITY_INFO_32,
            AFFINITY_INFO_64,
        ] {
            assert!(uses_power_state(f as u64));
            assert!(!uses_power_state(f as u64 | 1 << 32));
        }
    }

    #[test]
    fn constant_answers_are_the_full_calls_answers() {
        let mut p = [Power::On, Power::Off];
        let fids = [
            SMCCC_VERSION,
            SMCCC_ARCH_FEATURES,
            PSCI_VERSION,
            PSCI_FEATURES,
            MIGRATE_INFO_TYPE,
        ];
        for f in fids {
            for x1 in [0, 1, SMCCC_VERSION as u64, CPU_ON_64 as u64, u64::MAX] {
                let Outcome::Return(full) = call([f as u64, x1, 0, 0], 0, &mut p, RAM) else {
                    panic!("{f:#x} returns a value");
                };
                assert_eq!(
                    constant_answer(f as u64, x1, Services::default()),
                    Some(full),
                    "{f:#x}({x1:#x})"
                );
            }
        }
        // Anything with state or side effects takes the full path.
        for f in [
            CPU_ON_64,
            CPU_OFF,
            CPU_SUSPEND_64,
            SYSTEM_OFF,
            SYSTEM_RESET,
            PIVISOR_EXIT_COUNT,
            0x8600_ff01,
        ] {
            assert_eq!(
                constant_answer(f as u64, 0, Services::default()),
                None,
                "{f:#x}"
            );
        }
        assert_eq!(
            constant_answer(SMCCC_VERSION as u64 | 1 << 32, 0, Services::default()),
            None
        );
    }

    #[test]
    fn exit_count_call_passes_its_selector() {
        let mut p = [Power::On];
        let f = PIVISOR_EXIT_COUNT as u64;
        assert_eq!(call([f, 3, 0, 0], 0, &mut p, RAM), Outcome::ExitCount(3));
        assert_eq!(
            call([f, u64::MAX, 0, 0], 0, &mut p, RAM),
            Outcome::ExitCount(u64::MAX)
        );
        // Its SMC32 twin and a function id with high bits set are unknown.
        assert_eq!(
            call([f & !(1 << 30), 0, 0, 0], 0, &mut p, RAM),
            Outcome::Unknown
        );
        assert_eq!(
            call([f | 1 << 32, 0, 0, 0], 0, &mut p, RAM),
            Outcome::Unknown
        );
    }

    #[test]
    fn versions_and_features() {
        let mut p = [Power::On];
        assert_eq!(
            call([PSCI_VERSION as u64, 0, 0, 0], 0, &mut p, RAM),
            Outcome::Return(0x10001)
        );
        assert_eq!(
            call([SMCCC_VERSION as u64, 0, 0, 0], 0, &mut p, RAM),
            Outcome::Return(0x10001)
        );
        for f in [
            CPU_ON_64,
            CPU_OFF,
            CPU_SUSPEND_64,
            SYSTEM_RESET,
            SMCCC_VERSION,
            PSCI_FEATURES,
        ] {
            assert_eq!(
                call([PSCI_FEATURES as u64, f as u64, 0, 0], 0, &mut p, RAM),
                r(0),
                "{f:#x}"
            );
        }
        for f in [
            0x8400_0005u64,
            0x8400_000c,
            0xc400_0012,
            ARCH_WORKAROUND_1 as u64,
        ] {
            assert_eq!(
                call([PSCI_FEATURES as u64, f, 0, 0], 0, &mut p, RAM),
                r(-1),
                "{f:#x}"
            );
        }
        for w in [ARCH_WORKAROUND_1, ARCH_WORKAROUND_2, ARCH_WORKAROUND_3] {
            assert_eq!(
                call([SMCCC_ARCH_FEATURES as u64, w as u64, 0, 0], 0, &mut p, RAM),
                r(-1)
            );
        }
        // PSCI_FEATURES is an SMC32 call: its argument is w1.
        let hi = (1u64 << 40) | CPU_ON_64 as u64;
        assert_eq!(call([PSCI_FEATURES as u64, hi, 0, 0], 0, &mut p, RAM), r(0));
        assert_eq!(
            call([MIGRATE_INFO_TYPE as u64, 0, 0, 0], 0, &mut p, RAM),
            Outcome::Return(2)
        );
    }

    #[test]
    fn cpu_on_and_its_errors() {
        let mut p = [Power::On, Power::Off, Power::Off, Power::Off];
        assert_eq!(
            on(&mut p, 0, 0x8000_0001, 0x20_0000, 7),
            Outcome::Started(1)
        );
        assert_eq!(
            p[1],
            Power::OnPending {
                entry: 0x20_0000,
                context: 7
            }
        );
        assert_eq!(on(&mut p, 0, 1, 0x20_0000, 7), r(ret::ON_PENDING));
        assert_eq!(on(&mut p, 0, 0, 0x20_0000, 7), r(ret::ALREADY_ON));
        assert_eq!(on(&mut p, 0, 4, 0x20_0000, 7), r(ret::INVALID_PARAMETERS));
        assert_eq!(
            on(&mut p, 0, 0x100, 0x20_0000, 7),
            r(ret::INVALID_PARAMETERS),
            "Aff1"
        );
        assert_eq!(
            on(&mut p, 0, u64::MAX, 0x20_0000, 7),
            r(ret::INVALID_PARAMETERS)
        );
        assert_eq!(
            on(&mut p, 0, 2, RAM, 7),
            r(ret::INVALID_ADDRESS),
            "entry at RAM end"
        );
        assert_eq!(on(&mut p, 0, 2, u64::MAX - 3, 7), r(ret::INVALID_ADDRESS));
        assert_eq!(
            on(&mut p, 0, 2, 0x1002, 7),
            r(ret::INVALID_ADDRESS),
            "misaligned"
        );
        assert_eq!(p[2], Power::Off, "refused calls change nothing");
        // SMC32 CPU_ON: high halves of the arguments are ignored.
        let c = call(
            [
                CPU_ON_32 as u64,
                0xffff_ffff_0000_0003,
                0xdead_0000_0000_1000,
                0x1_0000_0002,
            ],
            0,
            &mut p,
            RAM,
        );
        assert_eq!(c, Outcome::Started(3));
        assert_eq!(
            p[3],
            Power::OnPending {
                entry: 0x1000,
                context: 2
            }
        );
    }

    #[test]
    fn affinity_info_and_cpu_off() {
        let mut p = [
            Power::On,
            Power::Off,
            Power::OnPending {
                entry: 0,
                context: 0,
            },
        ];
        let aff = |p: &mut [Power], t: u64, lvl: u64| {
            call([AFFINITY_INFO_64 as u64, t, lvl, 0], 0, p, RAM)
        };
        assert_eq!(aff(&mut p, 0, 0), Outcome::Return(0));
        assert_eq!(aff(&mut p, 1, 0), Outcome::Return(1));
        assert_eq!(aff(&mut p, 2, 0), Outcome::Return(2));
        assert_eq!(aff(&mut p, 3, 0), r(ret::INVALID_PARAMETERS));
        assert_eq!(aff(&mut p, 0, 1), r(ret::INVALID_PARAMETERS));
        assert_eq!(
            call([CPU_OFF as u64, 0, 0, 0], 0, &mut p, RAM),
            Outcome::Off
        );
        assert_eq!(p[0], Power::Off);
        // A hostile `me` outside the table changes nothing.
        assert_eq!(
            call([CPU_OFF as u64, 0, 0, 0], 9, &mut p, RAM),
            Outcome::Off
        );
    }

    #[test]
    fn system_calls_and_unknown_ids() {
        let mut p = [Power::On];
        assert_eq!(
            call([SYSTEM_OFF as u64, 0, 0, 0], 0, &mut p, RAM),
            Outcome::SystemOff
        );
        assert_eq!(
            call([SYSTEM_RESET as u64, 0, 0, 0], 0, &mut p, RAM),
            Outcome::SystemReset
        );
        assert_eq!(
            call([CPU_SUSPEND_64 as u64, 0, 0, 0], 0, &mut p, RAM),
            Outcome::Suspend
        );
        for f in [
            0u64,
            0x8400_0005,
            0x8600_0000,
            0xc200_0000,
            0xffff_ffff,
            1 << 32 | PSCI_VERSION as u64,
        ] {
            assert_eq!(
                call([f, 1, 2, 3], 0, &mut p, RAM),
                Outcome::Unknown,
                "{f:#x}"
            );
        }
        // Linux's boot-time probes: TRNG_VERSION, the vendor hypervisor
        // UID. Absent, quietly.
        for f in [0x8400_0050u64, 0xc400_0053, 0x8600_ff01] {
            assert_eq!(
                call([f, 0, 0, 0], 0, &mut p, RAM),
                Outcome::Absent,
                "{f:#x}"
            );
        }
        assert_eq!(vmpidr(3), 0x8000_0003);
        assert_eq!(target_vcpu(vmpidr(3), 4), Some(3), "bit 31 is not affinity");
        assert_eq!(target_vcpu(1 << 40 | 1, 4), None, "bits 63:40 name no CPU");
        assert_eq!(target_vcpu(1 << 32 | 1, 4), None, "Aff3");
    }

    #[test]
    fn workaround_1_is_offered_and_forwarded_only_when_el3_has_it() {
        let wa1 = u64::from(ARCH_WORKAROUND_1);
        let feat = u64::from(SMCCC_ARCH_FEATURES);
        // Decided from the firmware's own answers.
        let none = Services::default();
        let yes = Services::from_firmware(0x1_0001, Some(0));
        assert!(yes.workaround_1);
        assert_eq!(Services::from_firmware(0x1_0002, Some(1)), yes);
        for (v, f) in [
            (0x1_0000, Some(0)), // SMCCC 1.0: no ARCH_FEATURES
            (-1, Some(0)),       // SMCCC_VERSION unknown
            (0x1_0001, Some(-1)),
            (0x1_0001, None),
        ] {
            assert_eq!(Services::from_firmware(v, f), none, "{v:#x} {f:?}");
        }
        // Without it: NOT_SUPPORTED, and the call is not passed on.
        assert_eq!(
            constant_answer(feat, wa1, none),
            Some(ret::NOT_SUPPORTED as u64)
        );
        assert!(!forwards(wa1, none));
        // With it: SUCCESS, and only the exact 32-bit id is passed on.
        assert_eq!(constant_answer(feat, wa1, yes), Some(0));
        assert!(forwards(wa1, yes));
        for other in [
            wa1 | 1 << 32,
            wa1 | 1 << 30,
            u64::from(ARCH_WORKAROUND_2),
            0,
        ] {
            assert!(!forwards(other, yes), "{other:#x}");
        }
        // Other features are unchanged by it.
        assert_eq!(
            constant_answer(feat, u64::from(ARCH_WORKAROUND_2), yes),
            Some(ret::NOT_SUPPORTED as u64)
        );
    }
}
