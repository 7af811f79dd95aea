//! The nf_tables wire format: the small subset conlink sends.
//!
//! Numbers come from the Linux uapi headers `linux/netfilter/nfnetlink.h` and
//! `linux/netfilter/nf_tables.h`; the expression layouts follow what
//! `nft --debug=netlink` prints for the equivalent rule (checked by the
//! `nft_*` integration tests, which compare `nft -j list` of our rules with
//! the same rules written by `nft -f`).

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkDeserializable, NetlinkHeader, NetlinkSerializable, Nla,
    NLA_F_NESTED,
};
use std::net::Ipv4Addr;

// nfnetlink.h
/// `NFNL_SUBSYS_NFTABLES`: the high byte of every nf_tables message type.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN` (= `NLMSG_MIN_TYPE`).
pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
/// `NFNL_MSG_BATCH_END`.
pub const NFNL_MSG_BATCH_END: u16 = 0x11;
/// `NFNETLINK_V0`.
const NFNETLINK_V0: u8 = 0;
/// `NFPROTO_IPV4`: the `ip` family.
pub const NFPROTO_IPV4: u8 = 2;

// enum nf_tables_msg_types
pub const NFT_MSG_NEWTABLE: u16 = 0;
pub const NFT_MSG_GETTABLE: u16 = 1;
pub const NFT_MSG_DELTABLE: u16 = 2;
pub const NFT_MSG_NEWCHAIN: u16 = 3;
pub const NFT_MSG_DELCHAIN: u16 = 5;
pub const NFT_MSG_NEWRULE: u16 = 6;
pub const NFT_MSG_DELRULE: u16 = 8;

// enum nft_table_attributes
const NFTA_TABLE_NAME: u16 = 1;
// enum nft_chain_attributes
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_TYPE: u16 = 7;
// enum nft_hook_attributes
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
// enum nft_rule_attributes
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
// enum nft_list_attributes / nft_expr_attributes
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
// enum nft_data_attributes
const NFTA_DATA_VALUE: u16 = 1;
// enum nft_meta_attributes / nft_meta_keys
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_L4PROTO: u32 = 16;
// enum nft_cmp_attributes
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
// enum nft_payload_attributes / nft_payload_bases
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
// enum nft_immediate_attributes
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
// enum nft_nat_attributes / nft_nat_types
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFTA_NAT_FLAGS: u16 = 7;
const NFT_NAT_SNAT: u32 = 0;
const NFT_NAT_DNAT: u32 = 1;
/// `NF_NAT_RANGE_PROTO_SPECIFIED` (nf_nat.h): a port is given.
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;

/// `NFT_REG_1`: the 16-byte register nft itself uses for matches.
const REG_1: u32 = 1;
/// `NFT_REG_2`: holds the port of a NAT target.
const REG_2: u32 = 2;
/// `IFNAMSIZ`: nft compares interface names over the full 16 bytes, so
/// `eth0` does not match `eth0x`.
pub const IFNAMSIZ: usize = 16;

/// Netfilter hooks (`enum nf_inet_hooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `NF_INET_PRE_ROUTING`.
    Prerouting = 0,
    /// `NF_INET_POST_ROUTING`.
    Postrouting = 4,
}

impl Hook {
    /// The standard NAT priority for this hook: `dstnat` (-100) before
    /// routing, `srcnat` (100) after (`NF_IP_PRI_NAT_DST`/`_SRC`).
    pub fn nat_priority(self) -> i32 {
        match self {
            Hook::Prerouting => -100,
            Hook::Postrouting => 100,
        }
    }
}

/// One netlink attribute; a tree of these is a message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// A NUL-terminated string.
    Str(u16, String),
    /// A big-endian u32 (nf_tables attributes are all network order).
    U32(u16, u32),
    /// Raw bytes.
    Bytes(u16, Vec<u8>),
    /// A nested attribute list.
    Nested(u16, Vec<Attr>),
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match self {
            Attr::Str(_, s) => s.len() + 1,
            Attr::U32(..) => 4,
            Attr::Bytes(_, b) => b.len(),
            Attr::Nested(_, v) => v.as_slice().buffer_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Attr::Str(k, _) | Attr::U32(k, _) | Attr::Bytes(k, _) => *k,
            Attr::Nested(k, _) => *k | NLA_F_NESTED,
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            Attr::Str(_, s) => {
                buf[..s.len()].copy_from_slice(s.as_bytes());
                buf[s.len()] = 0;
            }
            Attr::U32(_, v) => buf.copy_from_slice(&v.to_be_bytes()),
            Attr::Bytes(_, b) => buf.copy_from_slice(b),
            Attr::Nested(_, v) => v.as_slice().emit(buf),
        }
    }
}

/// The body of one nfnetlink message: `struct nfgenmsg` + attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfMsg {
    /// Full netlink type: `(subsystem << 8) | message`.
    pub msg_type: u16,
    /// `nfgen_family`.
    pub family: u8,
    /// `res_id` (host order here, sent big-endian).
    pub res_id: u16,
    /// Attributes.
    pub attrs: Vec<Attr>,
}

const NFGENMSG_LEN: usize = 4;

impl NfMsg {
    /// An nf_tables message of the `ip` family.
    pub fn nft(msg: u16, attrs: Vec<Attr>) -> Self {
        NfMsg {
            msg_type: (NFNL_SUBSYS_NFTABLES << 8) | msg,
            family: NFPROTO_IPV4,
            res_id: 0,
            attrs,
        }
    }

    /// Batch begin/end marker: `res_id` names the subsystem the batch is for.
    pub fn batch(msg: u16) -> Self {
        NfMsg {
            msg_type: msg,
            family: 0, // AF_UNSPEC
            res_id: NFNL_SUBSYS_NFTABLES,
            attrs: Vec::new(),
        }
    }
}

impl NetlinkSerializable for NfMsg {
    fn message_type(&self) -> u16 {
        self.msg_type
    }

    fn buffer_len(&self) -> usize {
        NFGENMSG_LEN + self.attrs.as_slice().buffer_len()
    }

    fn serialize(&self, buf: &mut [u8]) {
        buf[0] = self.family;
        buf[1] = NFNETLINK_V0;
        buf[2..4].copy_from_slice(&self.res_id.to_be_bytes());
        self.attrs.as_slice().emit(&mut buf[NFGENMSG_LEN..]);
    }
}

impl NetlinkDeserializable for NfMsg {
    type Error = DecodeError;

    /// Only acks and errors are expected back; any other message is kept
    /// with its type and without attributes.
    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        if payload.len() < NFGENMSG_LEN {
            return Err(DecodeError::from("nfnetlink message shorter than nfgenmsg"));
        }
        Ok(NfMsg {
            msg_type: header.message_type,
            family: payload[0],
            res_id: u16::from_be_bytes([payload[2], payload[3]]),
            attrs: Vec::new(),
        })
    }
}

// ---- objects ---------------------------------------------------------------

/// `NFT_MSG_NEWTABLE` / `NFT_MSG_DELTABLE` body.
pub fn table(name: &str) -> Vec<Attr> {
    vec![Attr::Str(NFTA_TABLE_NAME, name.into())]
}

/// A NAT base chain: `chain NAME { type nat hook HOOK priority P; }`.
pub fn nat_base_chain(table: &str, name: &str, hook: Hook) -> Vec<Attr> {
    vec![
        Attr::Str(NFTA_CHAIN_TABLE, table.into()),
        Attr::Str(NFTA_CHAIN_NAME, name.into()),
        Attr::Nested(
            NFTA_CHAIN_HOOK,
            vec![
                Attr::U32(NFTA_HOOK_HOOKNUM, hook as u32),
                // The priority is a signed 32-bit value sent as u32.
                Attr::U32(NFTA_HOOK_PRIORITY, hook.nat_priority() as u32),
            ],
        ),
        Attr::Str(NFTA_CHAIN_TYPE, "nat".into()),
    ]
}

/// All rules of one chain, for `NFT_MSG_DELRULE` without a handle (= `flush
/// chain`). Careful: these are `NFTA_RULE_*` attributes, not `NFTA_CHAIN_*`;
/// a DELRULE without `NFTA_RULE_CHAIN` flushes every chain of the table.
pub fn rules_of(table: &str, chain: &str) -> Vec<Attr> {
    vec![
        Attr::Str(NFTA_RULE_TABLE, table.into()),
        Attr::Str(NFTA_RULE_CHAIN, chain.into()),
    ]
}

/// A chain by name (for `NFT_MSG_DELCHAIN`).
pub fn chain_ref(table: &str, name: &str) -> Vec<Attr> {
    vec![
        Attr::Str(NFTA_CHAIN_TABLE, table.into()),
        Attr::Str(NFTA_CHAIN_NAME, name.into()),
    ]
}

/// A rule appended to `table`/`chain`, made of `exprs` in order.
pub fn rule(table: &str, chain: &str, exprs: Vec<Attr>) -> Vec<Attr> {
    vec![
        Attr::Str(NFTA_RULE_TABLE, table.into()),
        Attr::Str(NFTA_RULE_CHAIN, chain.into()),
        Attr::Nested(NFTA_RULE_EXPRESSIONS, exprs),
    ]
}

// ---- expressions -----------------------------------------------------------

fn expr(name: &str, data: Vec<Attr>) -> Attr {
    Attr::Nested(
        NFTA_LIST_ELEM,
        vec![
            Attr::Str(NFTA_EXPR_NAME, name.into()),
            Attr::Nested(NFTA_EXPR_DATA, data),
        ],
    )
}

/// `[ meta load KEY => reg 1 ]`
fn meta(key: u32) -> Attr {
    expr(
        "meta",
        vec![
            Attr::U32(NFTA_META_DREG, REG_1),
            Attr::U32(NFTA_META_KEY, key),
        ],
    )
}

/// `[ cmp eq reg 1 DATA ]`
fn cmp_eq(data: Vec<u8>) -> Attr {
    expr(
        "cmp",
        vec![
            Attr::U32(NFTA_CMP_SREG, REG_1),
            Attr::U32(NFTA_CMP_OP, NFT_CMP_EQ),
            Attr::Nested(NFTA_CMP_DATA, vec![Attr::Bytes(NFTA_DATA_VALUE, data)]),
        ],
    )
}

/// `[ payload load LEN b @ BASE header + OFFSET => reg 1 ]`
fn payload(base: u32, offset: u32, len: u32) -> Attr {
    expr(
        "payload",
        vec![
            Attr::U32(NFTA_PAYLOAD_DREG, REG_1),
            Attr::U32(NFTA_PAYLOAD_BASE, base),
            Attr::U32(NFTA_PAYLOAD_OFFSET, offset),
            Attr::U32(NFTA_PAYLOAD_LEN, len),
        ],
    )
}

/// `[ immediate reg R DATA ]`
fn immediate(reg: u32, data: Vec<u8>) -> Attr {
    expr(
        "immediate",
        vec![
            Attr::U32(NFTA_IMMEDIATE_DREG, reg),
            Attr::Nested(
                NFTA_IMMEDIATE_DATA,
                vec![Attr::Bytes(NFTA_DATA_VALUE, data)],
            ),
        ],
    )
}

/// The interface name as nft compares it: NUL-padded to `IFNAMSIZ`.
/// The caller has checked `name.len() < IFNAMSIZ`.
fn ifname_bytes(name: &str) -> Vec<u8> {
    let mut v = vec![0u8; IFNAMSIZ];
    v[..name.len()].copy_from_slice(name.as_bytes());
    v
}

/// `iifname "NAME"`
pub fn match_iifname(name: &str) -> Vec<Attr> {
    vec![meta(NFT_META_IIFNAME), cmp_eq(ifname_bytes(name))]
}

/// `oifname "NAME"`
pub fn match_oifname(name: &str) -> Vec<Attr> {
    vec![meta(NFT_META_OIFNAME), cmp_eq(ifname_bytes(name))]
}

/// `ip daddr ADDR`
pub fn match_daddr(addr: Ipv4Addr) -> Vec<Attr> {
    vec![
        payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4),
        cmp_eq(addr.octets().to_vec()),
    ]
}

/// `tcp dport PORT` / `udp dport PORT`: `meta l4proto` then the transport
/// header's destination port (offset 2 in both TCP and UDP).
pub fn match_dport(l4proto: u8, port: u16) -> Vec<Attr> {
    vec![
        meta(NFT_META_L4PROTO),
        cmp_eq(vec![l4proto]),
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
        cmp_eq(port.to_be_bytes().to_vec()),
    ]
}

fn nat(kind: u32, addr: Ipv4Addr, port: Option<u16>) -> Vec<Attr> {
    let mut out = vec![immediate(REG_1, addr.octets().to_vec())];
    let mut data = vec![
        Attr::U32(NFTA_NAT_TYPE, kind),
        Attr::U32(NFTA_NAT_FAMILY, u32::from(NFPROTO_IPV4)),
        Attr::U32(NFTA_NAT_REG_ADDR_MIN, REG_1),
    ];
    if let Some(p) = port {
        out.push(immediate(REG_2, p.to_be_bytes().to_vec()));
        data.push(Attr::U32(NFTA_NAT_REG_PROTO_MIN, REG_2));
        data.push(Attr::U32(NFTA_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED));
    }
    out.push(expr("nat", data));
    out
}

/// `dnat to ADDR[:PORT]`
pub fn dnat(addr: Ipv4Addr, port: Option<u16>) -> Vec<Attr> {
    nat(NFT_NAT_DNAT, addr, port)
}

/// `snat to ADDR[:PORT]`
pub fn snat(addr: Ipv4Addr, port: Option<u16>) -> Vec<Attr> {
    nat(NFT_NAT_SNAT, addr, port)
}

/// `masquerade`
pub fn masquerade() -> Vec<Attr> {
    vec![expr("masq", Vec::new())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(a: &Attr) -> Vec<u8> {
        let mut v = vec![0u8; a.buffer_len()];
        a.emit(&mut v);
        v
    }

    #[test]
    fn string_attr_is_nul_terminated_and_padded() {
        // "nat" + NUL = 4 bytes of value, header length 8, no padding.
        assert_eq!(
            bytes(&Attr::Str(7, "nat".into())),
            [8, 0, 7, 0, b'n', b'a', b't', 0]
        );
        // "conlink" + NUL = 8 bytes.
        let b = bytes(&Attr::Str(1, "ab".into()));
        assert_eq!(b, [7, 0, 1, 0, b'a', b'b', 0, 0]);
    }

    #[test]
    fn u32_attrs_are_big_endian() {
        assert_eq!(
            bytes(&Attr::U32(2, 0xffff_ff9c)),
            [8, 0, 2, 0, 0xff, 0xff, 0xff, 0x9c]
        );
    }

    #[test]
    fn nested_flag_is_set() {
        let b = bytes(&Attr::Nested(4, vec![Attr::U32(1, 0)]));
        assert_eq!(b, [12, 0, 4, 0x80, 8, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn iifname_compare_is_16_bytes_like_nft() {
        // nft --debug=netlink: [ cmp eq reg 1 0x30687465 0x00000000 0x00000000 0x00000000 ]
        let m = match_iifname("eth0");
        let Attr::Nested(_, e) = &m[1] else {
            panic!("not nested")
        };
        let Attr::Nested(_, data) = &e[1] else {
            panic!("no data")
        };
        let Attr::Nested(_, val) = &data[2] else {
            panic!("no cmp data")
        };
        assert_eq!(
            val[0],
            Attr::Bytes(NFTA_DATA_VALUE, b"eth0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec())
        );
    }

    #[test]
    fn flush_names_the_chain_with_rule_attributes() {
        // Regression: a DELRULE carrying NFTA_CHAIN_NAME (3 = NFTA_RULE_HANDLE
        // for rules) has no NFTA_RULE_CHAIN and flushes the whole table.
        assert_eq!(
            rules_of("conlink", "fwd-a-pre"),
            vec![
                Attr::Str(NFTA_RULE_TABLE, "conlink".into()),
                Attr::Str(NFTA_RULE_CHAIN, "fwd-a-pre".into()),
            ]
        );
        assert_eq!((NFTA_RULE_TABLE, NFTA_RULE_CHAIN), (1, 2));
    }

    #[test]
    fn nfgenmsg_header() {
        let m = NfMsg::batch(NFNL_MSG_BATCH_BEGIN);
        let mut b = vec![0u8; NetlinkSerializable::buffer_len(&m)];
        m.serialize(&mut b);
        // family AF_UNSPEC, version 0, res_id = NFNL_SUBSYS_NFTABLES big-endian
        assert_eq!(b, [0, 0, 0, 10]);
        assert_eq!(NfMsg::nft(NFT_MSG_NEWRULE, vec![]).msg_type, 0x0a06);
    }
}
