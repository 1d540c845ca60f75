//! Disks for VMs: the card's partition table ([`mbr`]). Pure.

pub mod mbr;
