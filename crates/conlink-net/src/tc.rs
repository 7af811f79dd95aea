//! Traffic control: patch pairs (ingress + u32 + mirred redirect) and netem.

use conlink_model::{Distribution, Loss, Netem};

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::nl::{self, tcmsg, Msg, NLM_F_CREATE, NLM_F_REPLACE};

const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const RTM_NEWTFILTER: u16 = 44;

const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;

const TC_H_ROOT: u32 = 0xffff_ffff;
const TC_H_INGRESS: u32 = 0xffff_fff1;
const INGRESS_HANDLE: u32 = 0xffff_0000;
/// u32 handle `800::800`: fixed so that `replace` finds the same filter.
const PATCH_FILTER_HANDLE: u32 = 0x8000_0800;
const PATCH_PRIO: u32 = 1;
const ETH_P_ALL: u16 = 0x0003;

const TCA_U32_SEL: u16 = 5;
const TCA_U32_ACT: u16 = 7;
const TC_U32_TERMINAL: u8 = 1;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
const TCA_MIRRED_PARMS: u16 = 2;
const TC_ACT_STOLEN: i32 = 4;
const TCA_EGRESS_REDIR: i32 = 1;

const TCA_NETEM_CORR: u16 = 1;
const TCA_NETEM_DELAY_DIST: u16 = 2;
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_LOSS: u16 = 5;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_ECN: u16 = 7;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
const TCA_NETEM_SLOT: u16 = 12;
const TCA_NETEM_SLOT_DIST: u16 = 13;
const TCA_NETEM_PRNG_SEED: u16 = 14;
/// Nested in TCA_NETEM_LOSS: struct tc_netem_gimodel (4-state Markov).
const NETEM_LOSS_GI: u16 = 1;
/// Nested in TCA_NETEM_LOSS: struct tc_netem_gemodel (Gilbert-Elliott).
const NETEM_LOSS_GE: u16 = 2;

/// The `ingress` qdisc on `ifindex` (`tc qdisc replace dev DEV ingress`).
/// No TCA_OPTIONS: replacing an existing ingress qdisc is then a no-op
/// instead of EINVAL ("change operation not supported").
pub fn ingress_msg(ifindex: u32) -> Msg {
    let mut m = Msg::new(
        RTM_NEWQDISC,
        NLM_F_CREATE | NLM_F_REPLACE,
        &tcmsg(ifindex as i32, INGRESS_HANDLE, TC_H_INGRESS, 0),
    );
    m.attr_str(TCA_KIND, "ingress");
    m
}

/// `tc filter replace dev FROM parent ffff: protocol all prio 1 handle
/// 800::800 u32 match u8 0 0 action mirred egress redirect dev TO`.
///
/// The protocol in `tcm_info` is in network byte order: ETH_P_ALL must be
/// sent as `(ETH_P_ALL as u16).to_be()`; the host-order value (what
/// rtnetlink's docs show) is accepted by the kernel and matches nothing.
pub fn redirect_msg(from: u32, to: u32) -> Msg {
    let info = (PATCH_PRIO << 16) | u32::from(ETH_P_ALL.to_be());
    let mut m = Msg::new(
        RTM_NEWTFILTER,
        NLM_F_CREATE | NLM_F_REPLACE,
        &tcmsg(from as i32, PATCH_FILTER_HANDLE, INGRESS_HANDLE, info),
    );
    m.attr_str(TCA_KIND, "u32");
    m.nest(TCA_OPTIONS, |m| {
        // struct tc_u32_sel with one all-zero key (match u8 0 0 at 0).
        let mut sel = [0u8; 16 + 16];
        sel[0] = TC_U32_TERMINAL;
        sel[2] = 1; // nkeys
        m.attr(TCA_U32_SEL, &sel);
        m.nest(TCA_U32_ACT, |m| {
            m.nest(1, |m| {
                m.attr_str(TCA_ACT_KIND, "mirred");
                m.nest(TCA_ACT_OPTIONS | nl::NLA_F_NESTED, |m| {
                    // struct tc_mirred: tc_gen (index, capab, action,
                    // refcnt, bindcnt), eaction, ifindex.
                    let mut p = Vec::with_capacity(28);
                    p.extend_from_slice(&0u32.to_ne_bytes());
                    p.extend_from_slice(&0u32.to_ne_bytes());
                    p.extend_from_slice(&TC_ACT_STOLEN.to_ne_bytes());
                    p.extend_from_slice(&0i32.to_ne_bytes());
                    p.extend_from_slice(&0i32.to_ne_bytes());
                    p.extend_from_slice(&TCA_EGRESS_REDIR.to_ne_bytes());
                    p.extend_from_slice(&to.to_ne_bytes());
                    m.attr(TCA_MIRRED_PARMS, &p);
                });
            });
        });
    });
    m
}

/// A percentage as the kernel's u32 probability, rounded as iproute2's
/// `get_percent` does (`rint(pct / 100 * UINT32_MAX)`, ties to even).
fn prob(pct: f64) -> u32 {
    frac(pct / 100.0)
}

/// A fraction 0..=1 as the kernel's u32 probability (iproute2's `set_percent`).
fn frac(f: f64) -> u32 {
    (f * f64::from(u32::MAX)).round_ties_even() as u32
}

/// The complement 1 - pct/100, computed in fractions as tc does (so the
/// rounding matches: 1 - 0.7 is not exactly 0.3).
fn prob_complement(pct: f64) -> u32 {
    frac(1.0 - pct / 100.0)
}

/// Nanoseconds as psched ticks, as `tc` computes them: whole microseconds
/// times `tick_in_usec` from /proc/net/psched (1000/64 = 15.625 on every
/// kernel since PSCHED_SHIFT became 6). None if it overflows u32.
fn ticks(ns: u64) -> Option<u32> {
    let us = ns / 1000;
    u32::try_from(us.checked_mul(1000)? / 64).ok()
}

// glibc/musl libm (linked by std on Linux); Rust's std has no erf.
extern "C" {
    fn erf(x: f64) -> f64;
}

/// NETEM_DIST_SCALE: table values are multiples of sigma / 8192.
const DIST_SCALE: f64 = 8192.0;
/// Entries of a generated table (the kernel accepts up to 16384).
const DIST_SIZE: usize = 4096;

/// The normal CDF at `x` (mean 0, sigma 1).
fn normal_cdf(x: f64) -> f64 {
    // SAFETY: erf is a pure libm function.
    0.5 + 0.5 * unsafe { erf(x / std::f64::consts::SQRT_2) }
}

/// Inverse normal CDF sampled as iproute2's `normal` generator (NIST Net,
/// public domain) samples it: walk x from -10 in steps of 0.00005 (with the
/// same accumulated floating-point error), file each x under
/// rint(16384 * cdf(x)), keep every fourth slot, scaled by 8192.
fn normal_values() -> Vec<f64> {
    let mut table = vec![0.0f64; 16384 + 1];
    let mut x = -10.0f64;
    while x < 10.05 {
        let i = (16384.0 * normal_cdf(x)).round_ties_even() as usize;
        table[i.min(16384)] = x;
        x += 0.00005;
    }
    (0..16384).step_by(4).map(|i| table[i]).collect()
}

/// The Pareto (a = 3) table value of slot `i` (0..4096), as generated by
/// iproute2's `pareto`: the inverse CDF at (65536 - 16 i) / 65536, shifted
/// by the mean 1.5 and scaled so sigma maps to 8192.
fn pareto_value(i: usize) -> i32 {
    let p = (65536 - 16 * i as i64) as f64 / 65536.0;
    let v = ((1.0 / p.powf(1.0 / 3.0)) - 1.5) * (4.0 / 3.0) * DIST_SCALE;
    v.min(32767.0).round_ties_even() as i32
}

fn clamp16(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// The netem delay distribution table `name` (`normal`, `pareto`,
/// `paretonormal`), computed as iproute2 computes the `.dist` files it
/// ships, so no table file is needed at run time. The byte-comparison tests
/// check the result against tc's own request.
pub fn dist_table(name: &str) -> Result<Vec<i16>> {
    // 400 000 erf calls: compute the normal samples once per process.
    static NORMAL: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();
    let normal = || {
        NORMAL
            .get_or_init(|| {
                normal_values()
                    .into_iter()
                    .map(|x| (x * DIST_SCALE).round_ties_even() as i32)
                    .collect()
            })
            .clone()
    };
    Ok(match name {
        "normal" => normal().into_iter().map(clamp16).collect(),
        "pareto" => (0..DIST_SIZE).map(|i| clamp16(pareto_value(i))).collect(),
        // 1/4 normal + 3/4 pareto, integer division as in C.
        "paretonormal" => normal()
            .into_iter()
            .enumerate()
            .map(|(i, n)| clamp16((n + 3 * pareto_value(i)) / 4))
            .collect(),
        other => {
            return Err(Error::Invalid(format!(
                "netem distribution {other:?} (use uniform, normal, pareto or paretonormal)"
            )))
        }
    })
}

/// The TCA_OPTIONS payload of netem, laid out as iproute2's `tc` does:
/// struct tc_netem_qopt, then CORR, REORDER, ECN, CORRUPT, SLOT, LOSS
/// (nested GI or GE model), RATE64, RATE, PRNG_SEED, DELAY_DIST and
/// SLOT_DIST attributes. `dist` and `slot_dist` are the distribution
/// tables, if any.
///
/// Two deliberate differences from iproute2 6.1: a duplicate correlation
/// is sent in TCA_NETEM_CORR (tc parses it and then drops it), and delays
/// too long for 32-bit ticks go in LATENCY64/JITTER64 (tc refuses them).
pub fn netem_options(
    n: &Netem,
    dist: Option<&[i16]>,
    slot_dist: Option<&[i16]>,
) -> Result<Vec<u8>> {
    let lat = n.delay_ns.unwrap_or(0);
    let jit = n.jitter_ns.unwrap_or(0);
    let (lat_t, jit_t) = (ticks(lat), ticks(jit));
    let big = lat_t.is_none() || jit_t.is_none();
    let mut gap = n.gap.unwrap_or(0);
    if n.reorder.is_some_and(|r| r.pct > 0.0) && gap == 0 {
        gap = 1; // tc: reordering without a gap means every packet
    }
    let random = match n.loss {
        Some(Loss::Random(p)) => Some(p),
        _ => None,
    };
    let mut qopt = Vec::with_capacity(24);
    for v in [
        lat_t.unwrap_or(u32::MAX),
        n.limit.unwrap_or(1000),
        random.map(|p| prob(p.pct)).unwrap_or(0),
        gap,
        n.duplicate.map(|p| prob(p.pct)).unwrap_or(0),
        jit_t.unwrap_or(u32::MAX),
    ] {
        qopt.extend_from_slice(&v.to_ne_bytes());
    }
    let mut m = Msg::new(0, 0, &qopt);
    // tc emits CORR whenever any correlation was written, even one that
    // lives in REORDER/CORRUPT.
    let any_corr = n.delay_corr.is_some()
        || random.and_then(|p| p.corr).is_some()
        || n.duplicate.and_then(|p| p.corr).is_some()
        || n.reorder.and_then(|p| p.corr).is_some()
        || n.corrupt.and_then(|p| p.corr).is_some();
    if any_corr {
        let mut c = Vec::with_capacity(12);
        for v in [
            n.delay_corr,
            random.and_then(|p| p.corr),
            n.duplicate.and_then(|p| p.corr),
        ] {
            c.extend_from_slice(&v.map(prob).unwrap_or(0).to_ne_bytes());
        }
        m.attr(TCA_NETEM_CORR, &c);
    }
    let pair = |p: conlink_model::Percent| {
        let mut c = Vec::with_capacity(8);
        c.extend_from_slice(&prob(p.pct).to_ne_bytes());
        c.extend_from_slice(&p.corr.map(prob).unwrap_or(0).to_ne_bytes());
        c
    };
    if let Some(p) = n.reorder {
        m.attr(TCA_NETEM_REORDER, &pair(p));
    }
    if n.ecn {
        // tc sends its `present` flag, an int 1.
        m.attr_u32(TCA_NETEM_ECN, 1);
    }
    if let Some(p) = n.corrupt {
        m.attr(TCA_NETEM_CORRUPT, &pair(p));
    }
    if let Some(sl) = n.slot {
        // struct tc_netem_slot: min_delay, max_delay (s64 ns), max_packets,
        // max_bytes (s32; 0 = no limit), dist_delay, dist_jitter (s64 ns).
        // Without MAX_DELAY tc sends max = min; with a distribution the two
        // times are the distribution's delay and jitter instead.
        let i64_of = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (min, max, dd, dj) = match sl.distribution {
            Some(_) => (
                0,
                0,
                i64_of(sl.min_delay_ns),
                i64_of(sl.max_delay_ns.unwrap_or(0)),
            ),
            None => (
                i64_of(sl.min_delay_ns),
                i64_of(sl.max_delay_ns.unwrap_or(sl.min_delay_ns)),
                0,
                0,
            ),
        };
        let mut b = Vec::with_capacity(40);
        b.extend_from_slice(&min.to_ne_bytes());
        b.extend_from_slice(&max.to_ne_bytes());
        b.extend_from_slice(&(sl.packets.unwrap_or(0) as i32).to_ne_bytes());
        b.extend_from_slice(&(sl.bytes.unwrap_or(0) as i32).to_ne_bytes());
        b.extend_from_slice(&dd.to_ne_bytes());
        b.extend_from_slice(&dj.to_ne_bytes());
        m.attr(TCA_NETEM_SLOT, &b);
    }
    match n.loss {
        Some(Loss::State {
            p13,
            p31,
            p32,
            p23,
            p14,
        }) => {
            // tc's defaults for what is not given: p31 = 100 - p13, p32 = 0,
            // p23 = 100, p14 = 0. struct order: p13 p31 p32 p14 p23.
            let v = [
                prob(p13),
                p31.map_or(prob_complement(p13), prob),
                p32.map_or(0, prob),
                p14.map_or(0, prob),
                p23.map_or(u32::MAX, prob),
            ];
            let b: Vec<u8> = v.iter().flat_map(|p| p.to_ne_bytes()).collect();
            m.nest(TCA_NETEM_LOSS | nl::NLA_F_NESTED, |m| {
                m.attr(NETEM_LOSS_GI, &b);
            });
        }
        Some(Loss::Gemodel { p, r, one_h, one_k }) => {
            // As tc 6.1 sends it (checked against its request): the kernel
            // field is h, so the 1-H users write is sent as 100 - (1-H);
            // 1-K goes as written. Defaults: r = 100 - p, 1-H = 100 (h =
            // 0), 1-K = 0. struct order: p r h k1.
            let v = [
                prob(p),
                r.map_or(prob_complement(p), prob),
                one_h.map_or(0, prob_complement),
                one_k.map_or(0, prob),
            ];
            let b: Vec<u8> = v.iter().flat_map(|p| p.to_ne_bytes()).collect();
            m.nest(TCA_NETEM_LOSS | nl::NLA_F_NESTED, |m| {
                m.attr(NETEM_LOSS_GE, &b);
            });
        }
        Some(Loss::Random(_)) | None => {}
    }
    if let Some(rate) = n.rate {
        let r32 = if rate.bytes >= 1 << 32 {
            m.attr(TCA_NETEM_RATE64, &rate.bytes.to_ne_bytes());
            u32::MAX
        } else {
            rate.bytes as u32
        };
        // struct tc_netem_rate: rate, packet_overhead, cell_size, cell_overhead.
        let mut r = Vec::with_capacity(16);
        r.extend_from_slice(&r32.to_ne_bytes());
        r.extend_from_slice(&rate.packet_overhead.to_ne_bytes());
        r.extend_from_slice(&rate.cell_size.to_ne_bytes());
        r.extend_from_slice(&rate.cell_overhead.to_ne_bytes());
        m.attr(TCA_NETEM_RATE, &r);
    }
    if let Some(seed) = n.seed {
        m.attr(TCA_NETEM_PRNG_SEED, &seed.to_ne_bytes());
    }
    if big {
        m.attr(TCA_NETEM_LATENCY64, &(lat as i64).to_ne_bytes());
        m.attr(TCA_NETEM_JITTER64, &(jit as i64).to_ne_bytes());
    }
    if let Some(d) = dist {
        let b: Vec<u8> = d.iter().flat_map(|v| v.to_ne_bytes()).collect();
        m.attr(TCA_NETEM_DELAY_DIST, &b);
    }
    if let Some(d) = slot_dist {
        let b: Vec<u8> = d.iter().flat_map(|v| v.to_ne_bytes()).collect();
        m.attr(TCA_NETEM_SLOT_DIST, &b);
    }
    // Strip the 16-byte netlink header Msg put in front.
    Ok(m.bytes()[16..].to_vec())
}

/// The table for `d`; none for uniform (the kernel's behaviour without one).
fn table_for(d: Option<Distribution>) -> Result<Option<Vec<i16>>> {
    match d {
        None | Some(Distribution::Uniform) => Ok(None),
        Some(d) => dist_table(d.as_str()).map(Some),
    }
}

/// The full `tc qdisc replace dev DEV root netem …` request.
pub fn netem_msg(ifindex: u32, n: &Netem) -> Result<Msg> {
    let dist = table_for(n.distribution)?;
    let slot_dist = table_for(n.slot.and_then(|s| s.distribution))?;
    let opts = netem_options(n, dist.as_deref(), slot_dist.as_deref())?;
    let mut m = Msg::new(
        RTM_NEWQDISC,
        NLM_F_CREATE | NLM_F_REPLACE,
        &tcmsg(ifindex as i32, 0, TC_H_ROOT, 0),
    );
    m.attr_str(TCA_KIND, "netem");
    m.attr(TCA_OPTIONS, &opts);
    Ok(m)
}

impl Handle {
    /// Joins `a` and `b` back to back: an ingress qdisc on each and a u32
    /// match-all filter redirecting every frame to the other end
    /// (`tc qdisc replace dev A ingress; tc filter replace dev A parent
    /// ffff: protocol all prio 1 handle 800::800 u32 match u8 0 0 action
    /// mirred egress redirect dev B`, and the same from B to A).
    /// Idempotent: re-run it when an end comes back.
    pub fn patch(&self, a: &str, b: &str) -> Result<()> {
        // Both ends' indexes come from the cache (their creation echoed
        // them) and the four requests go in one datagram. A stale index (an
        // end made again behind the cache) answers ENODEV: looked up again,
        // once (the requests replace, so a half-applied first try is fine).
        for attempt in 0..2 {
            let (ia, ib) = (self.cached_index(a)?, self.cached_index(b)?);
            let msgs = [
                ingress_msg(ia),
                redirect_msg(ia, ib),
                ingress_msg(ib),
                redirect_msg(ib, ia),
            ];
            let refs: Vec<&Msg> = msgs.iter().collect();
            let mut stale = false;
            for (i, r) in self.batch(&refs).into_iter().enumerate() {
                let Err(e) = r else { continue };
                if e.errno == libc::ENODEV && attempt == 0 {
                    stale = true;
                    continue;
                }
                let (from, to) = if i < 2 { (a, b) } else { (b, a) };
                let what = if i % 2 == 0 {
                    format!("add ingress qdisc on {from}")
                } else {
                    format!("add redirect filter {from} -> {to}")
                };
                return Err(nl::op_err(what)(e));
            }
            if !stale {
                return Ok(());
            }
            self.forget(Some(a));
            self.forget(Some(b));
        }
        Ok(())
    }

    /// Removes a patch end: the ingress qdisc with its filters
    /// (`tc qdisc del dev DEV ingress`).
    pub fn unpatch(&self, dev: &str) -> Result<()> {
        let build = |i: u32| {
            let mut m = Msg::new(
                RTM_DELQDISC,
                0,
                &tcmsg(i as i32, INGRESS_HANDLE, TC_H_INGRESS, 0),
            );
            m.attr_str(TCA_KIND, "ingress");
            Ok(m)
        };
        self.request_on(dev, build, || format!("delete ingress qdisc on {dev}"))
    }

    /// Sets netem as the root qdisc (`tc qdisc replace dev DEV root netem
    /// …`), replacing any previous root qdisc so re-applying is safe. On a
    /// kernel without sch_netem: [`Error::MissingFeature`].
    pub fn set_netem(&self, dev: &str, n: &Netem) -> Result<()> {
        let op = format!("set netem {n} on {dev}");
        self.request_on(dev, |i| netem_msg(i, n), || op.clone())
            .map_err(|e| match e {
                // qdisc_create: ENOENT "Specified qdisc kind is unknown"
                // when no module provides the kind.
                Error::Netlink {
                    errno,
                    ref kernel_msg,
                    ..
                } if errno == libc::ENOENT
                    && kernel_msg
                        .as_deref()
                        .is_none_or(|m| m.contains("qdisc kind is unknown")) =>
                {
                    Error::MissingFeature {
                        op: op.clone(),
                        feature: "netem",
                        module: "sch_netem",
                        errno,
                    }
                }
                e => e,
            })
    }

    /// Removes the root qdisc, restoring the default
    /// (`tc qdisc del dev DEV root`).
    pub fn clear_root_qdisc(&self, dev: &str) -> Result<()> {
        self.request_on(
            dev,
            |i| Ok(Msg::new(RTM_DELQDISC, 0, &tcmsg(i as i32, 0, TC_H_ROOT, 0))),
            || format!("delete root qdisc on {dev}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netem_matches_tc_capture() {
        // Captured from iproute2 6.1 on this machine:
        // tc qdisc replace dev v0 root netem limit 500 delay 100ms 10ms 25%
        //   loss 1.5% 30% duplicate 2% corrupt 3% 5% reorder 4% 6% gap 5 rate 10mbit
        let n: Netem = "limit 500 delay 100ms 10ms 25% loss 1.5% 30% duplicate 2% corrupt 3% 5% reorder 4% 6% gap 5 rate 10mbit"
            .parse()
            .unwrap();
        let want: &[u8] = &[
            0x84, 0xd7, 0x17, 0x00, 0xf4, 0x01, 0x00, 0x00, 0x3d, 0x0a, 0xd7, 0x03, 0x05, 0x00,
            0x00, 0x00, 0x52, 0xb8, 0x1e, 0x05, 0x5a, 0x62, 0x02, 0x00, 0x10, 0x00, 0x01, 0x00,
            0x00, 0x00, 0x00, 0x40, 0xcc, 0xcc, 0xcc, 0x4c, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00,
            0x03, 0x00, 0xa4, 0x70, 0x3d, 0x0a, 0xf6, 0x28, 0x5c, 0x0f, 0x0c, 0x00, 0x04, 0x00,
            0x7b, 0x14, 0xae, 0x07, 0xcd, 0xcc, 0xcc, 0x0c, 0x14, 0x00, 0x06, 0x00, 0xd0, 0x12,
            0x13, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(netem_options(&n, None, None).unwrap(), want);
    }

    #[test]
    fn percent_and_ticks_round_like_tc() {
        assert_eq!(prob(25.0), 0x4000_0000);
        assert_eq!(prob(30.0), 0x4ccc_cccc);
        assert_eq!(prob(5.0), 0x0ccc_cccd);
        assert_eq!(ticks(5_000_000), Some(78125));
        assert_eq!(ticks(1_000_000_000_000), None);
    }

    #[test]
    fn redirect_protocol_is_network_order() {
        let b = redirect_msg(3, 4).bytes();
        // tcm_info at 16 + 16: prio 1 in the high half, htons(ETH_P_ALL) low.
        let info = u32::from_ne_bytes([b[32], b[33], b[34], b[35]]);
        assert_eq!(info >> 16, 1);
        assert_eq!((info & 0xffff) as u16, 0x0003u16.to_be());
    }
}
