//! Disks for VMs: the card's partition table ([`mbr`]) and the card
//! `make sd` writes ([`layout`]). Pure.

pub mod layout;
pub mod mbr;
