//! ethtool settings through the SIOCETHTOOL ioctl (what `ethtool -K` does on
//! kernels without the ethtool netlink family, and what every kernel still
//! accepts): checksum and segmentation offloads.

use std::os::fd::AsRawFd;

use conlink_model::EthtoolSetting;

use crate::error::{Error, Result};
use crate::handle::Handle;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_SRXCSUM: u32 = 0x15;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_SSG: u32 = 0x19;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_SUFO: u32 = 0x22;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_GFLAGS: u32 = 0x25;
const ETHTOOL_SFLAGS: u32 = 0x26;
const ETHTOOL_SGRO: u32 = 0x2c;
const ETH_FLAG_LRO: u32 = 1 << 15;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union (40 bytes).
#[repr(C)]
struct IfreqData {
    name: [u8; 16],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

impl Handle {
    fn ethtool_value(&self, dev: &str, setting: &str, cmd: u32, data: u32) -> Result<u32> {
        let err = |source| Error::Ethtool {
            dev: dev.to_string(),
            setting: setting.to_string(),
            source,
        };
        if dev.is_empty() || dev.len() > 15 {
            return Err(Error::Invalid(format!("bad interface name {dev:?}")));
        }
        let mut v = EthtoolValue { cmd, data };
        let mut ifr = IfreqData {
            name: [0; 16],
            data: &mut v as *mut EthtoolValue as *mut libc::c_void,
            _pad: [0; 16],
        };
        ifr.name[..dev.len()].copy_from_slice(dev.as_bytes());
        // SAFETY: valid socket fd; ifr and the ethtool_value it points to
        // live for the duration of the call and have the kernel's layout.
        let r = unsafe { libc::ioctl(self.ioctl_fd.as_raw_fd(), SIOCETHTOOL as _, &mut ifr) };
        if r < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        Ok(v.data)
    }

    /// Turns TX checksum offload on or off (`ethtool -K DEV tx on|off`).
    /// conlink turns it off on veth container ends: a veth hands partially
    /// checksummed packets to the other namespace, which breaks some traffic.
    pub fn set_tx_checksum(&self, dev: &str, on: bool) -> Result<()> {
        let s = if on { "tx on" } else { "tx off" };
        self.ethtool_value(dev, s, ETHTOOL_STXCSUM, on as u32)
            .map(|_| ())
    }

    /// Sets one offload feature by its `ethtool -K` short name
    /// (`rx tx sg tso gso gro lro ufo`: `ethtool -K DEV FEATURE on|off`).
    pub fn set_offload(&self, dev: &str, feature: &str, on: bool) -> Result<()> {
        let s = format!("{feature} {}", if on { "on" } else { "off" });
        let cmd = match feature {
            "rx" => ETHTOOL_SRXCSUM,
            "tx" => ETHTOOL_STXCSUM,
            "sg" => ETHTOOL_SSG,
            "tso" => ETHTOOL_STSO,
            "gso" => ETHTOOL_SGSO,
            "gro" => ETHTOOL_SGRO,
            "ufo" => ETHTOOL_SUFO,
            "lro" => {
                // LRO lives in the legacy flags word: read, flip, write.
                let flags = self.ethtool_value(dev, &s, ETHTOOL_GFLAGS, 0)?;
                let nf = if on {
                    flags | ETH_FLAG_LRO
                } else {
                    flags & !ETH_FLAG_LRO
                };
                if nf != flags {
                    self.ethtool_value(dev, &s, ETHTOOL_SFLAGS, nf)?;
                }
                return Ok(());
            }
            other => {
                return Err(Error::Invalid(format!(
                    "unknown offload feature {other:?} (known: rx tx sg tso gso gro lro ufo)"
                )))
            }
        };
        self.ethtool_value(dev, &s, cmd, on as u32).map(|_| ())
    }

    /// Applies a user's ethtool setting from the model, in order.
    pub fn apply_ethtool(&self, dev: &str, setting: &EthtoolSetting) -> Result<()> {
        match setting {
            EthtoolSetting::Features(v) => {
                for (feat, on) in v {
                    self.set_offload(dev, feat, *on)?;
                }
                Ok(())
            }
            other => Err(Error::Invalid(format!(
                "ethtool {other} on {dev}: not implemented yet"
            ))),
        }
    }
}
