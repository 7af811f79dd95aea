//! NAT and port forwarding with nftables, spoken over netlink.
//!
//! Everything lives in one table of conlink's own, `ip conlink`, so cleanup
//! never touches anybody else's rules. Each NAT link and each container's set
//! of forwards gets its own pair of NAT *base* chains (one at `prerouting`
//! priority `dstnat`, one at `postrouting` priority `srcnat`): adding or
//! removing one container's rules is a single batch on its own chains, with
//! no rule handles to remember and no other container's rules rebuilt. Every
//! change is one `NFNL_MSG_BATCH_BEGIN … END` transaction, so it applies
//! completely or not at all. See `docs/nat-and-forward.md` for the why.
//!
//! No `nft` binary is run: the messages are built in `wire.rs` and sent on a
//! `NETLINK_NETFILTER` socket opened inside the target namespace.

mod netns;
mod wire;

use conlink_model::Forward;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE,
    NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};
use std::collections::HashSet;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use wire::{Attr, Hook, NfMsg};

/// Name of conlink's table (family `ip`).
pub const TABLE: &str = "conlink";

/// conlink's docker-provided interface after its startup rename (spec §4).
pub const DOCKER_IF: &str = "DOCKER-ETH0";

/// Longest key accepted for a set of forwards (it becomes part of chain names).
pub const MAX_KEY_LEN: usize = 64;

/// Errors from the nftables layer. The errno of kernel refusals stays
/// reachable through [`NftError::errno`].
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// Input refused before anything was sent; nothing was changed.
    #[error("invalid nftables request: {0}")]
    Invalid(String),
    /// The netlink socket could not be opened (in that namespace).
    #[error("open nftables socket in {netns}: {source}")]
    Open {
        /// The namespace path, or `current`.
        netns: String,
        /// The OS error.
        source: io::Error,
    },
    /// Sending or receiving on the socket failed.
    #[error("{op} in {netns}: netlink i/o: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The namespace path, or `current`.
        netns: String,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel refused a message of the batch; the whole batch was
    /// rolled back.
    #[error("{op} in {netns}: {step}: {source}")]
    Kernel {
        /// What was being done (e.g. `add forwards for web_1`).
        op: String,
        /// The namespace path, or `current`.
        netns: String,
        /// The batch message the kernel refused (e.g. `add chain fwd-web_1-pre`).
        step: String,
        /// The errno the kernel returned.
        source: io::Error,
    },
    /// The kernel's reply did not make sense (no acknowledgement, garbage).
    #[error("{op} in {netns}: bad netlink reply: {reason}")]
    Reply {
        /// What was being done.
        op: String,
        /// The namespace path, or `current`.
        netns: String,
        /// What was wrong.
        reason: String,
    },
}

impl NftError {
    /// The OS errno behind this error, if any (e.g. `libc::ENOENT`).
    pub fn errno(&self) -> Option<i32> {
        match self {
            NftError::Open { source, .. }
            | NftError::Io { source, .. }
            | NftError::Kernel { source, .. } => source.raw_os_error(),
            NftError::Invalid(_) | NftError::Reply { .. } => None,
        }
    }
}

/// `nat` of a link (spec §4), applied in the container's namespace:
/// traffic arriving on `dev` is DNATed to `nat`, traffic leaving `dev` is
/// SNATed to `ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRule {
    /// The container interface (`dev` of the link).
    pub dev: String,
    /// The link's own address (`ip`, without prefix): source after SNAT.
    pub ip: Ipv4Addr,
    /// The `nat` address: destination after DNAT.
    pub nat: Ipv4Addr,
}

/// The forwards of one container link (spec §4), applied in conlink's
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRules {
    /// Names this set of rules, unique per container link (e.g. the outer
    /// interface name `web_2-eth0`); [`Nft::remove_forwards`] takes it back.
    /// 1 to [`MAX_KEY_LEN`] characters of `[A-Za-z0-9_.-]`.
    pub key: String,
    /// Interface the published ports arrive on, normally [`DOCKER_IF`].
    pub docker_if: String,
    /// The bridge the container's veth is attached to (traffic to the
    /// container is masqueraded when it leaves through it).
    pub bridge: String,
    /// The container's address on that link (replica offset applied).
    pub ip: Ipv4Addr,
    /// Ports, with the replica offset already applied to `conlink_port`.
    pub forwards: Vec<Forward>,
}

/// A `NETLINK_NETFILTER` socket bound inside one network namespace.
///
/// Every method is synchronous and sends one atomic batch.
pub struct Nft {
    sock: Socket,
    seq: u32,
    netns: String,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Nft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nft").field("netns", &self.netns).finish()
    }
}

/// One message of a batch, with a human description for error messages.
struct Step {
    what: String,
    msg: NfMsg,
    flags: u16,
}

impl Step {
    fn new(what: String, msg: u16, flags: u16, attrs: Vec<Attr>) -> Self {
        Step {
            what,
            msg: NfMsg::nft(msg, attrs),
            flags,
        }
    }
}

impl Nft {
    /// Open the socket in the namespace at `netns` (`/run/netns/NAME`,
    /// `/proc/PID/ns/net`), or in the caller's namespace for `None`.
    pub fn open(netns: Option<&Path>) -> Result<Self, NftError> {
        let name = netns.map_or_else(|| "current".to_string(), |p| p.display().to_string());
        let sock = match netns {
            Some(p) => netns::socket_in(p),
            None => netns::socket_here(),
        };
        Self::from_socket(sock, name)
    }

    /// Open the socket in the namespace `ns` refers to (a held namespace
    /// fd: unlike a `/proc/PID/ns/net` path it cannot come to name another
    /// namespace when PID is recycled). `name` is for messages.
    pub fn open_fd(ns: std::os::fd::BorrowedFd<'_>, name: &str) -> Result<Self, NftError> {
        let sock = ns.try_clone_to_owned().and_then(netns::socket_in_fd);
        Self::from_socket(sock, name.to_string())
    }

    fn from_socket(sock: io::Result<Socket>, name: String) -> Result<Self, NftError> {
        let sock = sock.map_err(|source| NftError::Open {
            netns: name.clone(),
            source,
        })?;
        Ok(Nft {
            sock,
            // Any start value works; a per-process one makes strace output
            // of two sockets easy to tell apart.
            seq: std::process::id().wrapping_mul(1000),
            netns: name,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Install (or replace) the `nat` rules of one container link.
    ///
    /// nft equivalent:
    /// ```text
    /// add table ip conlink
    /// add chain ip conlink nat-DEV-pre  { type nat hook prerouting priority dstnat; }
    /// add chain ip conlink nat-DEV-post { type nat hook postrouting priority srcnat; }
    /// flush chain ip conlink nat-DEV-pre; flush chain ip conlink nat-DEV-post
    /// add rule ip conlink nat-DEV-pre  iifname "DEV" dnat to NAT
    /// add rule ip conlink nat-DEV-post oifname "DEV" snat to IP
    /// ```
    pub fn apply_nat(&mut self, rule: &NatRule) -> Result<(), NftError> {
        check_ifname(&rule.dev, "nat dev")?;
        check_unicast(rule.ip, "nat ip")?;
        check_unicast(rule.nat, "nat address")?;
        let (pre, post) = nat_chains(&rule.dev);
        let pre_rule = [wire::match_iifname(&rule.dev), wire::dnat(rule.nat, None)].concat();
        let post_rule = [wire::match_oifname(&rule.dev), wire::snat(rule.ip, None)].concat();
        let op = format!("add nat rules for {}", rule.dev);
        self.replace_chains(&op, &pre, &post, vec![pre_rule], vec![post_rule])
    }

    /// Remove the `nat` rules of `dev`; removing absent rules is not an error.
    ///
    /// nft equivalent: `delete chain ip conlink nat-DEV-pre; delete chain ip
    /// conlink nat-DEV-post`.
    pub fn remove_nat(&mut self, dev: &str) -> Result<(), NftError> {
        check_ifname(dev, "nat dev")?;
        let (pre, post) = nat_chains(dev);
        self.delete_chains(&format!("remove nat rules for {dev}"), &[&pre, &post])
    }

    /// Install (or replace) the forwards of one container link.
    ///
    /// nft equivalent, per forward `CP:P/PROTO`:
    /// ```text
    /// add rule ip conlink fwd-KEY-pre  iifname "DOCKER-ETH0" PROTO dport CP dnat to IP:P
    /// add rule ip conlink fwd-KEY-post oifname "BRIDGE" ip daddr IP PROTO dport P masquerade
    /// ```
    /// in chains made and flushed as in [`Nft::apply_nat`].
    pub fn apply_forwards(&mut self, rules: &ForwardRules) -> Result<(), NftError> {
        check_key(&rules.key)?;
        check_ifname(&rules.docker_if, "forward docker interface")?;
        check_ifname(&rules.bridge, "forward bridge")?;
        check_unicast(rules.ip, "forward ip")?;
        if rules.forwards.is_empty() {
            return Err(NftError::Invalid(format!(
                "forwards {:?}: no ports given",
                rules.key
            )));
        }
        let mut seen = HashSet::new();
        for f in &rules.forwards {
            if !seen.insert((f.conlink_port, f.proto)) {
                return Err(NftError::Invalid(format!(
                    "forwards {:?}: port {}/{} published twice",
                    rules.key, f.conlink_port, f.proto
                )));
            }
        }
        let (pre, post) = fwd_chains(&rules.key);
        let mut pre_rules = Vec::new();
        let mut post_rules = Vec::new();
        for f in &rules.forwards {
            let l4 = f.proto.number();
            pre_rules.push(
                [
                    wire::match_iifname(&rules.docker_if),
                    wire::match_dport(l4, f.conlink_port),
                    wire::dnat(rules.ip, Some(f.container_port)),
                ]
                .concat(),
            );
            post_rules.push(
                [
                    wire::match_oifname(&rules.bridge),
                    wire::match_daddr(rules.ip),
                    wire::match_dport(l4, f.container_port),
                    wire::masquerade(),
                ]
                .concat(),
            );
        }
        let op = format!("add forwards for {}", rules.key);
        self.replace_chains(&op, &pre, &post, pre_rules, post_rules)
    }

    /// Remove the forwards installed under `key`; removing absent ones is not
    /// an error. Other containers' forwards are untouched.
    pub fn remove_forwards(&mut self, key: &str) -> Result<(), NftError> {
        check_key(key)?;
        let (pre, post) = fwd_chains(key);
        self.delete_chains(&format!("remove forwards for {key}"), &[&pre, &post])
    }

    /// Delete conlink's table with everything in it; a missing table is fine.
    ///
    /// nft equivalent: `list table ip conlink`, and only if it is there
    /// `add table ip conlink; delete table ip conlink` in one transaction
    /// (the add makes the delete succeed if the table went in between). No
    /// transaction when there is nothing to delete: a table made and
    /// destroyed costs an RCU grace period when the socket closes (~25 ms
    /// on this 2-core VM; every conlink start paid it, docs/performance.md).
    pub fn delete_table(&mut self) -> Result<(), NftError> {
        if !self.has_table()? {
            return Ok(());
        }
        let steps = vec![
            Step::new(
                format!("add table {TABLE}"),
                wire::NFT_MSG_NEWTABLE,
                NLM_F_CREATE,
                wire::table(TABLE),
            ),
            Step::new(
                format!("delete table {TABLE}"),
                wire::NFT_MSG_DELTABLE,
                0,
                wire::table(TABLE),
            ),
        ];
        self.batch("delete table conlink", steps)
    }

    /// Whether conlink's table exists (`nft list table ip conlink`,
    /// without its contents): a get, no transaction.
    pub fn has_table(&mut self) -> Result<bool, NftError> {
        let op = "look up table conlink";
        let seq = self.next_seq();
        let mut out = Vec::new();
        encode(
            &mut out,
            NfMsg::nft(wire::NFT_MSG_GETTABLE, wire::table(TABLE)),
            NLM_F_ACK,
            seq,
        );
        let io_err = |source, netns: &str| NftError::Io {
            op: op.to_string(),
            netns: netns.to_string(),
            source,
        };
        self.sock
            .send_to(&out, &SocketAddr::new(0, 0), 0)
            .map_err(|e| io_err(e, &self.netns))?;
        // The table (NFT_MSG_NEWTABLE) then the ack, or an error (ENOENT:
        // no such table). Bounded by the socket's receive timeout.
        let mut found = false;
        loop {
            self.buf.clear();
            self.sock
                .recv(&mut self.buf, 0)
                .map_err(|e| io_err(e, &self.netns))?;
            for msg in self.received(op)? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(err) => {
                        return match err.code.map(|c| -c.get()) {
                            None => Ok(found),
                            Some(libc::ENOENT) => Ok(false),
                            Some(errno) => Err(NftError::Kernel {
                                op: op.to_string(),
                                netns: self.netns.clone(),
                                step: format!("get table {TABLE}"),
                                source: io::Error::from_raw_os_error(errno),
                            }),
                        };
                    }
                    NetlinkPayload::InnerMessage(m)
                        if m.msg_type
                            == (wire::NFNL_SUBSYS_NFTABLES << 8) | wire::NFT_MSG_NEWTABLE =>
                    {
                        found = true;
                    }
                    _ => {}
                }
            }
        }
    }

    /// One transaction: make sure the table and both chains exist, empty
    /// them, and append the new rules.
    fn replace_chains(
        &mut self,
        op: &str,
        pre: &str,
        post: &str,
        pre_rules: Vec<Vec<Attr>>,
        post_rules: Vec<Vec<Attr>>,
    ) -> Result<(), NftError> {
        let mut steps = vec![Step::new(
            format!("add table {TABLE}"),
            wire::NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            wire::table(TABLE),
        )];
        for (chain, hook) in [(pre, Hook::Prerouting), (post, Hook::Postrouting)] {
            steps.push(Step::new(
                format!("add chain {chain}"),
                wire::NFT_MSG_NEWCHAIN,
                NLM_F_CREATE,
                wire::nat_base_chain(TABLE, chain, hook),
            ));
            // DELRULE without a handle flushes the chain: re-applying
            // replaces instead of duplicating.
            steps.push(Step::new(
                format!("flush chain {chain}"),
                wire::NFT_MSG_DELRULE,
                0,
                wire::rules_of(TABLE, chain),
            ));
        }
        for (chain, rules) in [(pre, pre_rules), (post, post_rules)] {
            for exprs in rules {
                steps.push(Step::new(
                    format!("add rule to chain {chain}"),
                    wire::NFT_MSG_NEWRULE,
                    NLM_F_CREATE | NLM_F_APPEND,
                    wire::rule(TABLE, chain, exprs),
                ));
            }
        }
        self.batch(op, steps)
    }

    /// Delete chains (with their rules) in one transaction; chains that do
    /// not exist are skipped.
    fn delete_chains(&mut self, op: &str, chains: &[&str]) -> Result<(), NftError> {
        let del = |c: &str| {
            // Without NLM_F_NONREC the kernel deletes the chain's rules too.
            Step::new(
                format!("delete chain {c}"),
                wire::NFT_MSG_DELCHAIN,
                0,
                wire::chain_ref(TABLE, c),
            )
        };
        match self.batch(op, chains.iter().map(|c| del(c)).collect()) {
            Err(e) if e.errno() == Some(libc::ENOENT) => {
                // Some chain (or the whole table) is missing and the batch was
                // rolled back: delete one by one and skip the missing ones.
                // (NFT_MSG_DESTROYCHAIN would do this in one go but needs
                // Linux 6.3.)
                for c in chains {
                    match self.batch(op, vec![del(c)]) {
                        Err(e) if e.errno() == Some(libc::ENOENT) => {}
                        other => other?,
                    }
                }
                Ok(())
            }
            other => other,
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send `steps` as one nfnetlink batch and check the kernel's verdict.
    fn batch(&mut self, op: &str, steps: Vec<Step>) -> Result<(), NftError> {
        let mut out = Vec::new();
        let mut seqs = Vec::with_capacity(steps.len());
        let begin = self.next_seq();
        encode(&mut out, NfMsg::batch(wire::NFNL_MSG_BATCH_BEGIN), 0, begin);
        let n = steps.len();
        for (i, s) in steps.into_iter().enumerate() {
            let seq = self.next_seq();
            // Only the last message asks for an ack: the kernel reports every
            // failing message anyway, and one ack per message could overflow
            // the receive buffer on big batches.
            let ack = if i + 1 == n { NLM_F_ACK } else { 0 };
            encode(&mut out, s.msg, s.flags | ack, seq);
            seqs.push((seq, s.what));
        }
        let end = self.next_seq();
        encode(&mut out, NfMsg::batch(wire::NFNL_MSG_BATCH_END), 0, end);
        let last = seqs.last().map_or(begin, |(s, _)| *s);

        let io_err = |source| NftError::Io {
            op: op.to_string(),
            netns: self.netns.clone(),
            source,
        };
        self.sock
            .send_to(&out, &SocketAddr::new(0, 0), 0)
            .map_err(io_err)?;

        // The kernel handles a netfilter batch synchronously inside sendmsg,
        // so every reply is queued by now. Block until the ack of the last
        // message or an error shows up (bounded by the socket's receive
        // timeout), then drain what else is queued without blocking.
        let mut first_err: Option<(u32, i32)> = None;
        let mut acked = false;
        loop {
            self.buf.clear();
            let settled = acked || first_err.is_some();
            let flags = if settled { libc::MSG_DONTWAIT } else { 0 };
            match self.sock.recv(&mut self.buf, flags) {
                Ok(_) => {}
                // Drained, or (not settled) the receive timeout expired.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    return Err(NftError::Io {
                        op: op.to_string(),
                        netns: self.netns.clone(),
                        source: e,
                    })
                }
            }
            for msg in self.received(op)? {
                let seq = msg.header.sequence_number;
                // Replies to an earlier batch (only possible after a timeout)
                // are not ours to judge.
                let ours = seq.wrapping_sub(begin) <= end.wrapping_sub(begin);
                if let (true, NetlinkPayload::Error(err)) = (ours, msg.payload) {
                    match err.code {
                        None if seq == last => acked = true,
                        None => {}
                        // Keep the error of the earliest message: later ones
                        // are often consequences of it.
                        Some(code) if first_err.is_none_or(|(s, _)| seq < s) => {
                            first_err = Some((seq, -code.get()));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if acked && first_err.is_none() {
            return Ok(());
        }
        match first_err {
            Some((seq, errno)) => {
                let step = if seq == begin {
                    "begin batch".to_string()
                } else {
                    seqs.iter()
                        .find(|(s, _)| *s == seq)
                        .map_or_else(|| format!("message {seq}"), |(_, w)| w.clone())
                };
                Err(NftError::Kernel {
                    op: op.to_string(),
                    netns: self.netns.clone(),
                    step,
                    source: io::Error::from_raw_os_error(errno),
                })
            }
            None => Err(self.reply_err(op, "no acknowledgement from the kernel".into())),
        }
    }

    /// The messages in the receive buffer, decoded.
    fn received(&self, op: &str) -> Result<Vec<NetlinkMessage<NfMsg>>, NftError> {
        let (buf, mut off, mut out) = (&self.buf, 0, Vec::new());
        while off + 16 <= buf.len() {
            let len =
                u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
            if len < 16 || off + len > buf.len() {
                return Err(self.reply_err(op, format!("truncated message of {len} bytes")));
            }
            out.push(
                NetlinkMessage::<NfMsg>::deserialize(&buf[off..off + len])
                    .map_err(|e| self.reply_err(op, e.to_string()))?,
            );
            off += (len + 3) & !3;
        }
        Ok(out)
    }

    fn reply_err(&self, op: &str, reason: String) -> NftError {
        NftError::Reply {
            op: op.to_string(),
            netns: self.netns.clone(),
            reason,
        }
    }
}

/// Append one serialized message to `out`.
fn encode(out: &mut Vec<u8>, body: NfMsg, flags: u16, seq: u32) {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(body));
    msg.finalize();
    let start = out.len();
    out.resize(start + msg.buffer_len(), 0);
    msg.serialize(&mut out[start..]);
}

fn nat_chains(dev: &str) -> (String, String) {
    (format!("nat-{dev}-pre"), format!("nat-{dev}-post"))
}

fn fwd_chains(key: &str) -> (String, String) {
    (format!("fwd-{key}-pre"), format!("fwd-{key}-post"))
}

/// Interface names as the kernel accepts them: 1..=15 bytes, no `/`,
/// whitespace or NUL.
fn check_ifname(name: &str, what: &str) -> Result<(), NftError> {
    let bad = name.is_empty()
        || name.len() >= wire::IFNAMSIZ
        || name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace() || b == b':');
    if bad {
        return Err(NftError::Invalid(format!(
            "{what} {name:?}: not a valid interface name (1-15 bytes, no '/', ':', spaces)"
        )));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), NftError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        return Err(NftError::Invalid(format!(
            "forwards key {key:?}: expected 1-{MAX_KEY_LEN} characters of [A-Za-z0-9_.-]"
        )));
    }
    Ok(())
}

fn check_unicast(ip: Ipv4Addr, what: &str) -> Result<(), NftError> {
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Err(NftError::Invalid(format!(
            "{what} {ip}: not a unicast address"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_checks() {
        assert!(check_ifname("eth0", "x").is_ok());
        assert!(check_ifname("DOCKER-ETH0", "x").is_ok());
        assert!(check_ifname("", "x").is_err());
        assert!(check_ifname("0123456789abcdef", "x").is_err());
        assert!(check_ifname("a/b", "x").is_err());
        assert!(check_key("web_2-eth0").is_ok());
        assert!(check_key("a b").is_err());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(check_unicast("0.0.0.0".parse().unwrap(), "x").is_err());
        assert!(check_unicast("224.0.0.1".parse().unwrap(), "x").is_err());
        assert!(check_unicast("10.0.0.1".parse().unwrap(), "x").is_ok());
    }

    #[test]
    fn batch_framing() {
        let mut out = Vec::new();
        encode(&mut out, NfMsg::batch(wire::NFNL_MSG_BATCH_BEGIN), 0, 7);
        // nlmsghdr(16) + nfgenmsg(4)
        assert_eq!(out.len(), 20);
        assert_eq!(&out[0..4], &20u32.to_ne_bytes());
        assert_eq!(&out[4..6], &0x10u16.to_ne_bytes());
        assert_eq!(&out[6..8], &NLM_F_REQUEST.to_ne_bytes());
        assert_eq!(&out[8..12], &7u32.to_ne_bytes());
        assert_eq!(&out[16..20], &[0, 0, 0, 10]);
    }
}
