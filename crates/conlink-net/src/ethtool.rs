//! ethtool settings: user settings through the kernel's ethtool generic
//! netlink family (features by any kernel name, rings, channels, link
//! modes), and the SIOCETHTOOL ioctl for the legacy offload switches
//! conlink itself flips (the veth tx-offload default).

use std::os::fd::AsRawFd;

use conlink_model::{ChannelParam, Duplex, EthtoolSetting, RingParam};

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::nl::{self, Msg, Socket};

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
}

// The kernel's ethtool generic netlink family (linux/ethtool_netlink.h):
// what `ethtool -K/-G/-L/-s` speak on kernels since 5.6.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const ETHTOOL_GENL_VERSION: u8 = 1;
const ETHTOOL_MSG_LINKMODES_SET: u8 = 5;
const ETHTOOL_MSG_FEATURES_GET: u8 = 11;
const ETHTOOL_MSG_FEATURES_SET: u8 = 12;
const ETHTOOL_A_FEATURES_HW: u16 = 2;
const ETHTOOL_MSG_RINGS_SET: u8 = 16;
const ETHTOOL_MSG_CHANNELS_SET: u8 = 18;
const ETHTOOL_A_HEADER_DEV_NAME: u16 = 2;
/// The request header is attribute 1 of every ethtool message.
const ETHTOOL_A_HEADER: u16 = 1;
const ETHTOOL_A_FEATURES_WANTED: u16 = 3;
const ETHTOOL_A_BITSET_BITS: u16 = 3;
const ETHTOOL_A_BITSET_BITS_BIT: u16 = 1;
const ETHTOOL_A_BITSET_BIT_NAME: u16 = 2;
const ETHTOOL_A_BITSET_BIT_VALUE: u16 = 3;
const ETHTOOL_A_LINKMODES_AUTONEG: u16 = 2;
const ETHTOOL_A_LINKMODES_SPEED: u16 = 5;
const ETHTOOL_A_LINKMODES_DUPLEX: u16 = 6;

/// The kernel feature names behind ethtool's legacy short names and its
/// group names (`ethtool -k` prints the groups, e.g. `tx-checksumming`).
/// A name not listed here is sent as is: the kernel knows it or refuses it.
fn kernel_features(name: &str) -> &[&str] {
    match name {
        "rx" | "rx-checksumming" => &["rx-checksum"],
        "tx" | "tx-checksumming" => &[
            "tx-checksum-ipv4",
            "tx-checksum-ip-generic",
            "tx-checksum-ipv6",
            "tx-checksum-fcoe-crc",
            "tx-checksum-sctp",
        ],
        "sg" | "scatter-gather" => &["tx-scatter-gather", "tx-scatter-gather-fraglist"],
        "tso" | "tcp-segmentation-offload" => &[
            "tx-tcp-segmentation",
            "tx-tcp-ecn-segmentation",
            "tx-tcp-mangleid-segmentation",
            "tx-tcp6-segmentation",
        ],
        "gso" | "generic-segmentation-offload" => &["tx-generic-segmentation"],
        "gro" | "generic-receive-offload" => &["rx-gro"],
        "lro" | "large-receive-offload" => &["rx-lro"],
        "ufo" | "udp-fragmentation-offload" => &["tx-udp-fragmentation"],
        "rxvlan" | "rx-vlan-offload" => &["rx-vlan-hw-parse"],
        "txvlan" | "tx-vlan-offload" => &["tx-vlan-hw-insert"],
        "ntuple" | "ntuple-filters" => &["rx-ntuple-filter"],
        "rxhash" | "receive-hashing" => &["rx-hashing"],
        _ => &[],
    }
}

/// The short names applied with the ioctl (checksums: exact on every
/// kernel). The others go through netlink: the legacy TSO ioctl, for one,
/// leaves features newer than it (tx-tcp-accecn-segmentation) on.
const IOCTL_FEATURES: &[&str] = &["rx", "tx"];

fn ring_attr(p: RingParam) -> u16 {
    // ETHTOOL_A_RINGS_*: RX 6, RX_MINI 7, RX_JUMBO 8, TX 9, RX_BUF_LEN 10,
    // CQE_SIZE 12.
    match p {
        RingParam::Rx => 6,
        RingParam::RxMini => 7,
        RingParam::RxJumbo => 8,
        RingParam::Tx => 9,
        RingParam::RxBufLen => 10,
        RingParam::CqeSize => 12,
    }
}

fn channel_attr(p: ChannelParam) -> u16 {
    // ETHTOOL_A_CHANNELS_*_COUNT: RX 6, TX 7, OTHER 8, COMBINED 9.
    match p {
        ChannelParam::Rx => 6,
        ChannelParam::Tx => 7,
        ChannelParam::Other => 8,
        ChannelParam::Combined => 9,
    }
}

fn genl(family: u16, cmd: u8, version: u8) -> Msg {
    Msg::new(family, 0, &[cmd, version, 0, 0])
}

/// The kernel names a feature word of `-K` stands for: a group or short
/// name becomes those of its members the device can change (`hw`, from
/// ETHTOOL_MSG_FEATURES_GET; `tso` also takes any `tx-tcp*-segmentation`
/// the kernel has, as ethtool does); any other name is sent as written.
pub fn expand_feature(name: &str, hw: &[String]) -> Vec<String> {
    let mut known: Vec<&str> = kernel_features(name).to_vec();
    if known.is_empty() {
        return vec![name.to_string()];
    }
    if known.contains(&"tx-tcp-segmentation") {
        for h in hw {
            if h.starts_with("tx-tcp")
                && h.ends_with("segmentation")
                && !known.contains(&h.as_str())
            {
                known.push(h);
            }
        }
    }
    known
        .into_iter()
        .filter(|k| hw.iter().any(|h| h == k))
        .map(str::to_string)
        .collect()
}

/// The ethtool request for `setting` on `dev` (`ethtool -K DEV …` →
/// ETHTOOL_MSG_FEATURES_SET, `-G` → RINGS_SET, `-L` → CHANNELS_SET, `-s`
/// → LINKMODES_SET), for family id `family`. `hw` lists the device's
/// changeable features (for group names; see [`expand_feature`]).
pub fn ethtool_msg(family: u16, dev: &str, setting: &EthtoolSetting, hw: &[String]) -> Msg {
    let header = |m: &mut Msg| {
        m.nest(ETHTOOL_A_HEADER | nl::NLA_F_NESTED, |m| {
            m.attr_str(ETHTOOL_A_HEADER_DEV_NAME, dev);
        });
    };
    match setting {
        EthtoolSetting::Features(v) => {
            let mut m = genl(family, ETHTOOL_MSG_FEATURES_SET, ETHTOOL_GENL_VERSION);
            header(&mut m);
            // A bit set by name, without NOMASK: only the listed bits
            // change, each set when VALUE is present.
            m.nest(ETHTOOL_A_FEATURES_WANTED | nl::NLA_F_NESTED, |m| {
                m.nest(ETHTOOL_A_BITSET_BITS | nl::NLA_F_NESTED, |m| {
                    for (name, on) in v {
                        for n in expand_feature(name, hw) {
                            m.nest(ETHTOOL_A_BITSET_BITS_BIT | nl::NLA_F_NESTED, |m| {
                                m.attr_str(ETHTOOL_A_BITSET_BIT_NAME, &n);
                                if *on {
                                    m.attr(ETHTOOL_A_BITSET_BIT_VALUE, &[]);
                                }
                            });
                        }
                    }
                });
            });
            m
        }
        EthtoolSetting::Rings(v) => {
            let mut m = genl(family, ETHTOOL_MSG_RINGS_SET, ETHTOOL_GENL_VERSION);
            header(&mut m);
            for (p, n) in v {
                m.attr_u32(ring_attr(*p), *n);
            }
            m
        }
        EthtoolSetting::Channels(v) => {
            let mut m = genl(family, ETHTOOL_MSG_CHANNELS_SET, ETHTOOL_GENL_VERSION);
            header(&mut m);
            for (p, n) in v {
                m.attr_u32(channel_attr(*p), *n);
            }
            m
        }
        EthtoolSetting::LinkModes(lm) => {
            let mut m = genl(family, ETHTOOL_MSG_LINKMODES_SET, ETHTOOL_GENL_VERSION);
            header(&mut m);
            if let Some(a) = lm.autoneg {
                m.attr_u8(ETHTOOL_A_LINKMODES_AUTONEG, a as u8);
            }
            if let Some(s) = lm.speed {
                m.attr_u32(ETHTOOL_A_LINKMODES_SPEED, s);
            }
            if let Some(d) = lm.duplex {
                m.attr_u8(
                    ETHTOOL_A_LINKMODES_DUPLEX,
                    match d {
                        Duplex::Half => 0,
                        Duplex::Full => 1,
                    },
                );
            }
            m
        }
    }
}

impl Handle {
    /// A generic netlink socket in this handle's namespace and the ethtool
    /// family's id (`genl ctrl get name ethtool`).
    fn ethtool_genl(&self) -> Result<(Socket, u16)> {
        let io = |op: &str| {
            let op = op.to_string();
            move |source| Error::Io { op, source }
        };
        let mut sock = self
            .netns()
            .run(|| Socket::open_proto(libc::NETLINK_GENERIC))?
            .map_err(io("open generic netlink socket"))?;
        let mut m = genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
        m.attr_str(CTRL_ATTR_FAMILY_NAME, "ethtool");
        let reply = sock.get(&m).map_err(|e| match e.errno {
            libc::ENOENT => Error::MissingFeature {
                op: "find the ethtool netlink family".into(),
                feature: "ethtool netlink",
                module: "(kernel built without CONFIG_ETHTOOL_NETLINK)",
                errno: e.errno,
            },
            _ => nl::op_err("find the ethtool netlink family")(e),
        })?;
        let id = nl::attrs(reply.payload.get(4..).unwrap_or(&[]))
            .find(|(t, _)| *t == CTRL_ATTR_FAMILY_ID)
            .and_then(|(_, d)| d.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]])))
            .ok_or_else(|| Error::Invalid("nlctrl reply without a family id".into()))?;
        Ok((sock, id))
    }

    /// Applies a user's ethtool setting from the model through the
    /// kernel's ethtool netlink family: features by kernel name (or
    /// ethtool's short/group names), rings, channels, link modes
    /// (`ethtool -K|-G|-L|-s DEV …`).
    pub fn apply_ethtool(&self, dev: &str, setting: &EthtoolSetting) -> Result<()> {
        // Fast path: the legacy short names have ioctls of their own, one
        // syscall each, without opening a generic netlink socket on a
        // namespace thread. Every veth gets `--offload tx off` by default,
        // so this is the common case and keeps link setup cheap.
        if let EthtoolSetting::Features(v) = setting {
            if v.iter().all(|(f, _)| IOCTL_FEATURES.contains(&f.as_str())) {
                for (f, on) in v {
                    self.set_offload(dev, f, *on)?;
                }
                return Ok(());
            }
        }
        let (mut sock, family) = self.ethtool_genl()?;
        let op = format!("ethtool {setting} on {dev}");
        let hw = match setting {
            EthtoolSetting::Features(_) => hw_features(&mut sock, family, dev)
                .map_err(nl::op_err(format!("{op}: list the features of {dev}")))?,
            _ => Vec::new(),
        };
        nl::check(sock.request(&ethtool_msg(family, dev, setting, &hw)), op)
    }
}

/// The names of `dev`'s changeable features (`ethtool -k DEV`, the ones not
/// `[fixed]`): the HW bit set of ETHTOOL_MSG_FEATURES_GET, non-compact so
/// the kernel names each bit.
fn hw_features(
    sock: &mut Socket,
    family: u16,
    dev: &str,
) -> std::result::Result<Vec<String>, nl::NlError> {
    let mut m = genl(family, ETHTOOL_MSG_FEATURES_GET, ETHTOOL_GENL_VERSION);
    m.nest(ETHTOOL_A_HEADER | nl::NLA_F_NESTED, |m| {
        m.attr_str(ETHTOOL_A_HEADER_DEV_NAME, dev);
    });
    let reply = sock.get(&m)?;
    let mut out = Vec::new();
    for (t, hw) in nl::attrs(reply.payload.get(4..).unwrap_or(&[])) {
        if t != ETHTOOL_A_FEATURES_HW {
            continue;
        }
        for (t, bits) in nl::attrs(hw) {
            if t != ETHTOOL_A_BITSET_BITS {
                continue;
            }
            for (t, bit) in nl::attrs(bits) {
                if t != ETHTOOL_A_BITSET_BITS_BIT {
                    continue;
                }
                if let Some((_, n)) = nl::attrs(bit).find(|(t, _)| *t == ETHTOOL_A_BITSET_BIT_NAME)
                {
                    out.push(nl::attr_string(n));
                }
            }
        }
    }
    Ok(out)
}
