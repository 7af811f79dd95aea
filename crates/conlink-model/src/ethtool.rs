//! ethtool settings a link may carry (`ethtool` property).

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

/// Offload features conlink can switch (the short names of `ethtool -K`).
pub const OFFLOAD_FEATURES: &[&str] = &["rx", "tx", "sg", "tso", "gso", "gro", "lro", "ufo"];

/// One ethtool-style setting: `--offload|-K|--features FEATURE on|off …`.
/// (The device is implied: it is the link's `dev`.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EthtoolSetting {
    /// Offload features to turn on (true) or off (false), in order.
    Offload(Vec<(String, bool)>),
}

impl FromStr for EthtoolSetting {
    type Err = ParseEthtoolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseEthtoolError {
            setting: s.to_string(),
            reason,
        };
        let mut words = s.split_whitespace();
        match words.next() {
            Some("--offload" | "-K" | "--features") => {}
            Some(other) => {
                return Err(err(format!(
                    "unsupported ethtool command {other:?} (conlink supports --offload/-K)"
                )))
            }
            None => return Err(err("empty setting".into())),
        }
        let rest: Vec<&str> = words.collect();
        if rest.is_empty() || rest.len() % 2 != 0 {
            return Err(err("expected FEATURE on|off pairs".into()));
        }
        let mut out = Vec::new();
        for pair in rest.chunks(2) {
            let (feat, val) = (pair[0], pair[1]);
            if !OFFLOAD_FEATURES.contains(&feat) {
                return Err(err(format!(
                    "unknown offload feature {feat:?} (known: {})",
                    OFFLOAD_FEATURES.join(", ")
                )));
            }
            let on = match val {
                "on" => true,
                "off" => false,
                v => return Err(err(format!("{feat} {v:?}: expected on or off"))),
            };
            out.push((feat.to_string(), on));
        }
        Ok(EthtoolSetting::Offload(out))
    }
}

impl fmt::Display for EthtoolSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EthtoolSetting::Offload(v) => {
                f.write_str("--offload")?;
                for (feat, on) in v {
                    write!(f, " {feat} {}", if *on { "on" } else { "off" })?;
                }
                Ok(())
            }
        }
    }
}
crate::serde_via_str!(EthtoolSetting);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offload_forms() {
        let e: EthtoolSetting = "-K rx off tx on".parse().unwrap();
        assert_eq!(e.to_string(), "--offload rx off tx on");
        assert!("--offload rx".parse::<EthtoolSetting>().is_err());
        assert!("--offload warp off".parse::<EthtoolSetting>().is_err());
        assert!("-s speed 100".parse::<EthtoolSetting>().is_err());
    }
}
