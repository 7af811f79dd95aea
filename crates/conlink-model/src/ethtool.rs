//! ethtool settings a link may carry (`ethtool` property): what follows
//! `ethtool` on its command line, minus the device (the link's `dev`).

use std::fmt;
use std::str::FromStr;

/// Why an ethtool string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ethtool {setting:?}: {reason}")]
pub struct ParseEthtoolError {
    /// The setting as written.
    pub setting: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The legacy short feature names of `ethtool -K` (each stands for one or
/// more kernel feature names; conlink-net maps them). Any kernel feature
/// name (`tx-checksumming`, `rx-gro`, …) is accepted as well.
pub const OFFLOAD_FEATURES: &[&str] = &[
    "rx", "tx", "sg", "tso", "gso", "gro", "lro", "ufo", "rxvlan", "txvlan", "ntuple", "rxhash",
];

/// A ring size of `ethtool -G/--set-ring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingParam {
    /// `rx N`.
    Rx,
    /// `rx-mini N`.
    RxMini,
    /// `rx-jumbo N`.
    RxJumbo,
    /// `tx N`.
    Tx,
    /// `rx-buf-len N`.
    RxBufLen,
    /// `cqe-size N`.
    CqeSize,
}

impl RingParam {
    /// The word ethtool uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RingParam::Rx => "rx",
            RingParam::RxMini => "rx-mini",
            RingParam::RxJumbo => "rx-jumbo",
            RingParam::Tx => "tx",
            RingParam::RxBufLen => "rx-buf-len",
            RingParam::CqeSize => "cqe-size",
        }
    }
    const ALL: [RingParam; 6] = [
        RingParam::Rx,
        RingParam::RxMini,
        RingParam::RxJumbo,
        RingParam::Tx,
        RingParam::RxBufLen,
        RingParam::CqeSize,
    ];
}

/// A channel count of `ethtool -L/--set-channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelParam {
    /// `rx N`.
    Rx,
    /// `tx N`.
    Tx,
    /// `other N`.
    Other,
    /// `combined N`.
    Combined,
}

impl ChannelParam {
    /// The word ethtool uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelParam::Rx => "rx",
            ChannelParam::Tx => "tx",
            ChannelParam::Other => "other",
            ChannelParam::Combined => "combined",
        }
    }
    const ALL: [ChannelParam; 4] = [
        ChannelParam::Rx,
        ChannelParam::Tx,
        ChannelParam::Other,
        ChannelParam::Combined,
    ];
}

/// Duplex of `ethtool -s … duplex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duplex {
    /// `half`.
    Half,
    /// `full`.
    Full,
}

/// `ethtool -s/--change`: link mode settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LinkModes {
    /// `speed N` in Mb/s.
    pub speed: Option<u32>,
    /// `duplex half|full`.
    pub duplex: Option<Duplex>,
    /// `autoneg on|off`.
    pub autoneg: Option<bool>,
}

/// One ethtool setting on the link's `dev`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EthtoolSetting {
    /// `-K|--features|--offload FEATURE on|off …`: features by kernel name
    /// or legacy short name, in order.
    Features(Vec<(String, bool)>),
    /// `-G|--set-ring PARAM N …`.
    Rings(Vec<(RingParam, u32)>),
    /// `-L|--set-channels PARAM N …`.
    Channels(Vec<(ChannelParam, u32)>),
    /// `-s|--change [speed N] [duplex half|full] [autoneg on|off]`.
    LinkModes(LinkModes),
}

fn on_off(v: &str) -> Option<bool> {
    match v {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// Whether `name` can be a kernel feature name (`ethtool -k` lists them:
/// lowercase letters, digits and dashes).
fn feature_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

impl FromStr for EthtoolSetting {
    type Err = ParseEthtoolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseEthtoolError {
            setting: s.to_string(),
            reason,
        };
        let mut words = s.split_whitespace();
        let cmd = words.next().ok_or_else(|| err("empty setting".into()))?;
        let rest: Vec<&str> = words.collect();
        let pairs = |what: &str| -> Result<Vec<(&str, &str)>, ParseEthtoolError> {
            if rest.is_empty() || rest.len() % 2 != 0 {
                return Err(err(format!("expected {what} pairs")));
            }
            Ok(rest.chunks(2).map(|p| (p[0], p[1])).collect())
        };
        let num = |k: &str, v: &str| -> Result<u32, ParseEthtoolError> {
            v.parse()
                .map_err(|_| err(format!("{k} {v:?}: not a number")))
        };
        match cmd {
            "--offload" | "-K" | "--features" => {
                let mut out = Vec::new();
                for (feat, val) in pairs("FEATURE on|off")? {
                    if !feature_name_ok(feat) {
                        return Err(err(format!("{feat:?} is not a feature name")));
                    }
                    let on = on_off(val)
                        .ok_or_else(|| err(format!("{feat} {val:?}: expected on or off")))?;
                    out.push((feat.to_string(), on));
                }
                Ok(EthtoolSetting::Features(out))
            }
            "-G" | "--set-ring" => {
                let mut out = Vec::new();
                for (k, v) in pairs("PARAM N")? {
                    let p = RingParam::ALL
                        .into_iter()
                        .find(|p| p.as_str() == k)
                        .ok_or_else(|| {
                            err(format!(
                                "unknown ring parameter {k:?} (known: rx, rx-mini, rx-jumbo, tx, rx-buf-len, cqe-size)"
                            ))
                        })?;
                    out.push((p, num(k, v)?));
                }
                Ok(EthtoolSetting::Rings(out))
            }
            "-L" | "--set-channels" => {
                let mut out = Vec::new();
                for (k, v) in pairs("PARAM N")? {
                    let p = ChannelParam::ALL
                        .into_iter()
                        .find(|p| p.as_str() == k)
                        .ok_or_else(|| {
                            err(format!(
                                "unknown channel parameter {k:?} (known: rx, tx, other, combined)"
                            ))
                        })?;
                    out.push((p, num(k, v)?));
                }
                Ok(EthtoolSetting::Channels(out))
            }
            "-s" | "--change" => {
                let mut m = LinkModes::default();
                for (k, v) in pairs("PARAM VALUE")? {
                    match k {
                        "speed" => m.speed = Some(num(k, v)?),
                        "duplex" => {
                            m.duplex = Some(match v {
                                "half" => Duplex::Half,
                                "full" => Duplex::Full,
                                _ => return Err(err(format!("duplex {v:?}: expected half or full"))),
                            })
                        }
                        "autoneg" => {
                            m.autoneg = Some(
                                on_off(v).ok_or_else(|| {
                                    err(format!("autoneg {v:?}: expected on or off"))
                                })?,
                            )
                        }
                        other => {
                            return Err(err(format!(
                                "unsupported -s parameter {other:?} (conlink supports speed, duplex, autoneg)"
                            )))
                        }
                    }
                }
                Ok(EthtoolSetting::LinkModes(m))
            }
            other => Err(err(format!(
                "unsupported ethtool command {other:?} (conlink supports -K/--features/--offload, -G/--set-ring, -L/--set-channels, -s/--change)"
            ))),
        }
    }
}

impl fmt::Display for EthtoolSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EthtoolSetting::Features(v) => {
                f.write_str("--offload")?;
                for (feat, on) in v {
                    write!(f, " {feat} {}", if *on { "on" } else { "off" })?;
                }
            }
            EthtoolSetting::Rings(v) => {
                f.write_str("--set-ring")?;
                for (p, n) in v {
                    write!(f, " {} {n}", p.as_str())?;
                }
            }
            EthtoolSetting::Channels(v) => {
                f.write_str("--set-channels")?;
                for (p, n) in v {
                    write!(f, " {} {n}", p.as_str())?;
                }
            }
            EthtoolSetting::LinkModes(m) => {
                f.write_str("--change")?;
                if let Some(s) = m.speed {
                    write!(f, " speed {s}")?;
                }
                if let Some(d) = m.duplex {
                    let d = match d {
                        Duplex::Half => "half",
                        Duplex::Full => "full",
                    };
                    write!(f, " duplex {d}")?;
                }
                if let Some(a) = m.autoneg {
                    write!(f, " autoneg {}", if a { "on" } else { "off" })?;
                }
            }
        }
        Ok(())
    }
}
crate::serde_via_str!(EthtoolSetting);

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> EthtoolSetting {
        let e: EthtoolSetting = s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(e.to_string().parse::<EthtoolSetting>().unwrap(), e);
        e
    }

    #[test]
    fn feature_forms() {
        let e = rt("-K rx off tx on");
        assert_eq!(
            e,
            EthtoolSetting::Features(vec![("rx".into(), false), ("tx".into(), true)])
        );
        assert_eq!(e.to_string(), "--offload rx off tx on");
        assert_eq!(
            rt("--features tx-checksumming off rx-gro on").to_string(),
            "--offload tx-checksumming off rx-gro on"
        );
        assert!("--offload rx".parse::<EthtoolSetting>().is_err());
        assert!("--offload Warp! off".parse::<EthtoolSetting>().is_err());
        assert!("--offload rx maybe".parse::<EthtoolSetting>().is_err());
    }

    #[test]
    fn rings_channels_link_modes() {
        assert_eq!(
            rt("-G rx 512 tx 256").to_string(),
            "--set-ring rx 512 tx 256"
        );
        assert_eq!(rt("-L combined 2").to_string(), "--set-channels combined 2");
        assert_eq!(
            rt("-s speed 1000 duplex full autoneg off").to_string(),
            "--change speed 1000 duplex full autoneg off"
        );
        for (bad, why) in [
            ("-G rx x", "not a number"),
            ("-G bogus 1", "unknown ring parameter \"bogus\""),
            ("-L foo 1", "unknown channel parameter \"foo\""),
            ("-s wol g", "unsupported -s parameter \"wol\""),
            ("-s duplex double", "half or full"),
            ("-A autoneg on", "unsupported ethtool command \"-A\""),
        ] {
            let e = bad.parse::<EthtoolSetting>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
