//! netem impairments: the options of `tc qdisc replace dev DEV root netem …`.

use std::fmt;
use std::str::FromStr;

/// Why a netem string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("netem {netem:?}: {reason}")]
pub struct ParseNetemError {
    /// The options as written.
    pub netem: String,
    /// What is wrong with them.
    pub reason: String,
}

/// A percentage with its optional correlation (both 0..=100).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percent {
    /// Probability in percent.
    pub pct: f64,
    /// Correlation with the previous decision, in percent.
    pub corr: Option<f64>,
}

/// The netem options conlink understands (see tc-netem(8)). Times are in
/// nanoseconds, rates in bytes per second, as the kernel takes them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Netem {
    /// `limit PACKETS` (queue length; tc's default is 1000).
    pub limit: Option<u32>,
    /// `delay TIME`.
    pub delay_ns: Option<u64>,
    /// `delay TIME JITTER`.
    pub jitter_ns: Option<u64>,
    /// `delay TIME JITTER CORRELATION`, percent.
    pub delay_corr: Option<f64>,
    /// `distribution uniform|normal|pareto|paretonormal` (needs jitter).
    pub distribution: Option<String>,
    /// `loss [random] PERCENT [CORRELATION]`.
    pub loss: Option<Percent>,
    /// `duplicate PERCENT [CORRELATION]`.
    pub duplicate: Option<Percent>,
    /// `corrupt PERCENT [CORRELATION]`.
    pub corrupt: Option<Percent>,
    /// `reorder PERCENT [CORRELATION]` (needs delay).
    pub reorder: Option<Percent>,
    /// `reorder … gap DISTANCE`.
    pub gap: Option<u32>,
    /// `rate RATE`, bytes per second.
    pub rate_bytes: Option<u64>,
}

/// Parses a tc time (`200ms`, `1.5s`, `10us`; a bare number is microseconds).
pub fn parse_time_ns(s: &str) -> Option<u64> {
    let idx = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(idx);
    let v: f64 = num.parse().ok()?;
    let mul = match unit {
        "s" | "sec" | "secs" => 1e9,
        "ms" | "msec" | "msecs" => 1e6,
        "" | "us" | "usec" | "usecs" => 1e3,
        "ns" | "nsec" | "nsecs" => 1.0,
        _ => return None,
    };
    let ns = v * mul;
    (ns.is_finite() && ns >= 0.0 && ns < u64::MAX as f64).then(|| ns.round() as u64)
}

/// Parses a tc rate (`10mbit`, `1gbit`, `100kbps`; a bare number is bit/s)
/// into bytes per second.
pub fn parse_rate_bytes(s: &str) -> Option<u64> {
    let idx = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(idx);
    let v: f64 = num.parse().ok()?;
    let unit = unit.to_ascii_lowercase();
    let bits_per_unit = match unit.as_str() {
        "" | "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "tbit" => 1e12,
        "kibit" => 1024.0,
        "mibit" => 1024.0 * 1024.0,
        "gibit" => 1024.0 * 1024.0 * 1024.0,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        "kibps" => 8.0 * 1024.0,
        "mibps" => 8.0 * 1024.0 * 1024.0,
        "gibps" => 8.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = v * bits_per_unit / 8.0;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then(|| bytes.round() as u64)
}

fn parse_pct(s: &str) -> Option<f64> {
    let v: f64 = s.strip_suffix('%').unwrap_or(s).parse().ok()?;
    (0.0..=100.0).contains(&v).then_some(v)
}

fn fmt_time(ns: u64) -> String {
    if ns % 1_000_000_000 == 0 && ns > 0 {
        format!("{}s", ns / 1_000_000_000)
    } else if ns % 1_000_000 == 0 && ns > 0 {
        format!("{}ms", ns / 1_000_000)
    } else if ns % 1_000 == 0 {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

fn fmt_rate(bytes: u64) -> String {
    let bits = bytes.saturating_mul(8);
    if bits % 1_000_000_000 == 0 && bits > 0 {
        format!("{}gbit", bits / 1_000_000_000)
    } else if bits % 1_000_000 == 0 && bits > 0 {
        format!("{}mbit", bits / 1_000_000)
    } else if bits % 1_000 == 0 && bits > 0 {
        format!("{}kbit", bits / 1_000)
    } else {
        format!("{bits}bit")
    }
}

impl FromStr for Netem {
    type Err = ParseNetemError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseNetemError {
            netem: s.to_string(),
            reason,
        };
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.is_empty() {
            return Err(err("no options".into()));
        }
        let mut n = Netem::default();
        let mut i = 0;
        // Optional trailing percentage argument (correlation) at position i.
        let opt_pct = |i: &mut usize| -> Option<f64> {
            let v = words.get(*i).and_then(|w| parse_pct(w))?;
            *i += 1;
            Some(v)
        };
        let need_pct = |i: &mut usize, what: &str| -> Result<f64, ParseNetemError> {
            let w = words
                .get(*i)
                .ok_or_else(|| err(format!("{what} needs a percentage")))?;
            let v = parse_pct(w)
                .ok_or_else(|| err(format!("{what} {w:?}: not a percentage 0..100")))?;
            *i += 1;
            Ok(v)
        };
        while i < words.len() {
            let key = words[i];
            i += 1;
            match key {
                "limit" => {
                    let w = words
                        .get(i)
                        .ok_or_else(|| err("limit needs a packet count".into()))?;
                    n.limit = Some(
                        w.parse()
                            .map_err(|_| err(format!("limit {w:?}: not a packet count")))?,
                    );
                    i += 1;
                }
                "delay" | "latency" => {
                    let w = words
                        .get(i)
                        .ok_or_else(|| err("delay needs a time".into()))?;
                    n.delay_ns = Some(
                        parse_time_ns(w).ok_or_else(|| err(format!("delay {w:?}: not a time")))?,
                    );
                    i += 1;
                    if let Some(j) = words.get(i).and_then(|w| parse_time_ns(w)) {
                        n.jitter_ns = Some(j);
                        i += 1;
                        n.delay_corr = opt_pct(&mut i);
                    }
                }
                "distribution" => {
                    let w = words
                        .get(i)
                        .ok_or_else(|| err("distribution needs a name".into()))?;
                    if !matches!(*w, "uniform" | "normal" | "pareto" | "paretonormal") {
                        return Err(err(format!(
                            "distribution {w:?}: use uniform, normal, pareto or paretonormal"
                        )));
                    }
                    n.distribution = Some(w.to_string());
                    i += 1;
                }
                "loss" | "drop" => {
                    if words.get(i) == Some(&"random") {
                        i += 1;
                    }
                    let pct = need_pct(&mut i, "loss")?;
                    n.loss = Some(Percent {
                        pct,
                        corr: opt_pct(&mut i),
                    });
                }
                "duplicate" => {
                    let pct = need_pct(&mut i, "duplicate")?;
                    n.duplicate = Some(Percent {
                        pct,
                        corr: opt_pct(&mut i),
                    });
                }
                "corrupt" => {
                    let pct = need_pct(&mut i, "corrupt")?;
                    n.corrupt = Some(Percent {
                        pct,
                        corr: opt_pct(&mut i),
                    });
                }
                "reorder" => {
                    let pct = need_pct(&mut i, "reorder")?;
                    n.reorder = Some(Percent {
                        pct,
                        corr: opt_pct(&mut i),
                    });
                }
                "gap" => {
                    let w = words
                        .get(i)
                        .ok_or_else(|| err("gap needs a distance".into()))?;
                    n.gap = Some(
                        w.parse()
                            .map_err(|_| err(format!("gap {w:?}: not a number")))?,
                    );
                    i += 1;
                }
                "rate" => {
                    let w = words
                        .get(i)
                        .ok_or_else(|| err("rate needs a rate".into()))?;
                    n.rate_bytes = Some(
                        parse_rate_bytes(w)
                            .ok_or_else(|| err(format!("rate {w:?}: not a rate (like 10mbit)")))?,
                    );
                    i += 1;
                }
                other => return Err(err(format!("unsupported netem option {other:?}"))),
            }
        }
        if n.distribution.is_some() && n.jitter_ns.is_none() {
            return Err(err("distribution needs a delay with jitter".into()));
        }
        if (n.reorder.is_some() || n.gap.is_some()) && n.delay_ns.is_none() {
            return Err(err("reorder needs a delay".into()));
        }
        if n.gap.is_some() && n.reorder.is_none() {
            return Err(err("gap needs reorder".into()));
        }
        Ok(n)
    }
}

impl fmt::Display for Netem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let pct = |name: &str, p: &Percent| match p.corr {
            Some(c) => format!("{name} {}% {}%", p.pct, c),
            None => format!("{name} {}%", p.pct),
        };
        if let Some(l) = self.limit {
            parts.push(format!("limit {l}"));
        }
        if let Some(d) = self.delay_ns {
            let mut s = format!("delay {}", fmt_time(d));
            if let Some(j) = self.jitter_ns {
                s += &format!(" {}", fmt_time(j));
                if let Some(c) = self.delay_corr {
                    s += &format!(" {c}%");
                }
            }
            parts.push(s);
        }
        if let Some(d) = &self.distribution {
            parts.push(format!("distribution {d}"));
        }
        if let Some(p) = &self.loss {
            parts.push(pct("loss", p));
        }
        if let Some(p) = &self.duplicate {
            parts.push(pct("duplicate", p));
        }
        if let Some(p) = &self.corrupt {
            parts.push(pct("corrupt", p));
        }
        if let Some(p) = &self.reorder {
            parts.push(pct("reorder", p));
        }
        if let Some(g) = self.gap {
            parts.push(format!("gap {g}"));
        }
        if let Some(r) = self.rate_bytes {
            parts.push(format!("rate {}", fmt_rate(r)));
        }
        f.write_str(&parts.join(" "))
    }
}
crate::serde_via_str!(Netem);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        let n: Netem = "delay 200ms 10ms 25% distribution normal loss random 1.5% rate 10mbit"
            .parse()
            .unwrap();
        assert_eq!(n.delay_ns, Some(200_000_000));
        assert_eq!(n.jitter_ns, Some(10_000_000));
        assert_eq!(n.rate_bytes, Some(1_250_000));
        assert_eq!(
            n.to_string(),
            "delay 200ms 10ms 25% distribution normal loss 1.5% rate 10mbit"
        );
        let back: Netem = n.to_string().parse().unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn rejects_unknown_and_inconsistent() {
        for bad in [
            "",
            "delay",
            "delay fast",
            "loss 101%",
            "bogus 1",
            "reorder 5%",
            "distribution normal delay 1ms",
            "rate 10furlongs",
        ] {
            assert!(bad.parse::<Netem>().is_err(), "{bad:?}");
        }
    }
}
