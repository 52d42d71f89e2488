//! captures/*.pcap: real UDP traffic of reference daemons (two tunnel peers,
//! with and without shroud, and two clients with a cathedral), decoded
//! packet by packet and compared with the independent decode in
//! `<name>.decoded.json`, with the secrets and keylog of `<name>.meta.json`.
//!
//! Every packet is a case: unshroud (if the capture is shrouded), classify,
//! then open offers with the right derivation (SACRAMNT: shared secret and
//! the meta flocks; KATEDRAL/CIBORIUM: `cathedral_secrets[hdr.spi]` with
//! flocks cathedral_flock/0, through the cathedral-side check for client
//! offers and through a `CathedralClient` for replies) with the clock set
//! to the capture time, and open data packets with the data path module
//! under the keylog's keys.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use chantry_core::aead::Cipher;
use chantry_core::cathedral::{
    CathedralClient, CathedralEvent, ClientConfig, ClientDirectory, IgnoreReason, MemoryDirectory,
    OfferSource, check_offer,
};
use chantry_core::entropy::SeededEntropy;
use chantry_core::kdf::{self, OfferLabel};
use chantry_core::secret::{Key32, Secret};
use chantry_core::time::{Instant, Now};
use chantry_core::wire::offer::{
    self, Magic, Offer, OfferBody, OfferHeader, PacketKind, TIMESTAMP_WINDOW,
};
use chantry_core::wire::{data, shroud};
use serde_json::Value;

use crate::common::{arr, hexa, load_bytes, load_json, unhex};

pub fn tunnel_plain() -> usize {
    check_capture("tunnel-plain")
}

pub fn tunnel_shroud() -> usize {
    check_capture("tunnel-shroud")
}

pub fn cathedral_p2p() -> usize {
    check_capture("cathedral-p2p")
}

/// A small classic-pcap reader: only what the captures need, and safe on
/// any input (every length is checked, nothing panics).
mod pcap {
    use std::net::{Ipv4Addr, SocketAddrV4};

    /// Why a capture or one of its frames could not be read.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Error {
        /// The file ends inside the global header or a record.
        Truncated(&'static str),
        /// Not a classic pcap magic.
        BadMagic(u32),
        /// A link type this reader does not decode.
        LinkType(u32),
        /// A record claims more bytes than the snap length allows.
        RecordTooLong(u32),
        /// Not IPv4 (ethertype / protocol / version).
        NotIpv4,
        /// IPv4 header fields are inconsistent with the frame.
        BadIpv4,
        /// A fragment: the UDP datagram is not complete in this frame.
        Fragment,
        /// IPv4 but not UDP.
        NotUdp(u8),
        /// UDP length inconsistent with the IPv4 payload.
        BadUdp,
    }

    /// Link types present in the readers' world (pcap LINKTYPE_*).
    pub const ETHERNET: u32 = 1;
    /// LINKTYPE_RAW (IPv4 or IPv6 without link header).
    pub const RAW: u32 = 101;
    /// LINKTYPE_LINUX_SLL.
    pub const LINUX_SLL: u32 = 113;
    /// LINKTYPE_IPV4.
    pub const IPV4: u32 = 228;
    /// LINKTYPE_LINUX_SLL2.
    pub const LINUX_SLL2: u32 = 276;

    /// One captured frame.
    #[derive(Debug, Clone)]
    pub struct Record {
        /// Capture time, whole seconds.
        pub ts_sec: u32,
        /// Sub-second part in nanoseconds.
        pub ts_nanos: u32,
        /// The captured bytes.
        pub data: Vec<u8>,
    }

    /// A whole capture file.
    #[derive(Debug, Clone)]
    pub struct Capture {
        /// LINKTYPE of every record.
        pub link_type: u32,
        /// The records in file order.
        pub records: Vec<Record>,
    }

    fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
        let a: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    fn u16_be(b: &[u8], at: usize) -> Option<u16> {
        let a: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(u16::from_be_bytes(a))
    }

    /// Parses a classic pcap file (either byte order, micro- or
    /// nanosecond timestamps).
    pub fn parse(file: &[u8]) -> Result<Capture, Error> {
        const USEC: u32 = 0xa1b2_c3d4;
        const NSEC: u32 = 0xa1b2_3c4d;
        let magic = u32_at(file, 0, false).ok_or(Error::Truncated("global header"))?;
        let (big, nanos) = match magic {
            USEC => (false, false),
            NSEC => (false, true),
            m if m.swap_bytes() == USEC => (true, false),
            m if m.swap_bytes() == NSEC => (true, true),
            m => return Err(Error::BadMagic(m)),
        };
        let snaplen = u32_at(file, 16, big).ok_or(Error::Truncated("global header"))?;
        let link_type = u32_at(file, 20, big).ok_or(Error::Truncated("global header"))?;
        let mut records = Vec::new();
        let mut at = 24usize;
        while at < file.len() {
            let hdr = file
                .get(at..at + 16)
                .ok_or(Error::Truncated("record header"))?;
            let ts_sec = u32_at(hdr, 0, big).ok_or(Error::Truncated("record header"))?;
            let frac = u32_at(hdr, 4, big).ok_or(Error::Truncated("record header"))?;
            let incl = u32_at(hdr, 8, big).ok_or(Error::Truncated("record header"))?;
            if incl > snaplen.max(65535) {
                return Err(Error::RecordTooLong(incl));
            }
            let start = at + 16;
            let end = start
                .checked_add(usize::try_from(incl).map_err(|_| Error::RecordTooLong(incl))?)
                .ok_or(Error::RecordTooLong(incl))?;
            let data = file
                .get(start..end)
                .ok_or(Error::Truncated("record data"))?;
            let ts_nanos = if nanos {
                frac
            } else {
                frac.saturating_mul(1000)
            };
            records.push(Record {
                ts_sec,
                ts_nanos,
                data: data.to_vec(),
            });
            at = end;
        }
        Ok(Capture { link_type, records })
    }

    /// A UDP datagram carried in a frame.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Udp<'a> {
        /// Source ip:port.
        pub src: SocketAddrV4,
        /// Destination ip:port.
        pub dst: SocketAddrV4,
        /// The UDP payload.
        pub payload: &'a [u8],
    }

    /// The IPv4 packet inside a frame of `link_type`.
    pub fn ipv4_of(link_type: u32, frame: &[u8]) -> Result<&[u8], Error> {
        let (proto, rest) = match link_type {
            ETHERNET => {
                let mut ethertype = u16_be(frame, 12).ok_or(Error::NotIpv4)?;
                let mut at = 14;
                // 802.1Q / 802.1ad tags.
                while ethertype == 0x8100 || ethertype == 0x88a8 {
                    ethertype = u16_be(frame, at + 2).ok_or(Error::NotIpv4)?;
                    at += 4;
                }
                (ethertype, frame.get(at..).ok_or(Error::NotIpv4)?)
            }
            LINUX_SLL => (
                u16_be(frame, 14).ok_or(Error::NotIpv4)?,
                frame.get(16..).ok_or(Error::NotIpv4)?,
            ),
            LINUX_SLL2 => (
                u16_be(frame, 0).ok_or(Error::NotIpv4)?,
                frame.get(20..).ok_or(Error::NotIpv4)?,
            ),
            RAW | IPV4 => (0x0800, frame),
            other => return Err(Error::LinkType(other)),
        };
        if proto != 0x0800 {
            return Err(Error::NotIpv4);
        }
        Ok(rest)
    }

    /// The UDP datagram of an IPv4 packet (no fragments, no options
    /// beyond what IHL says, lengths consistent).
    pub fn udp_of(ip: &[u8]) -> Result<Udp<'_>, Error> {
        let first = *ip.first().ok_or(Error::BadIpv4)?;
        if first >> 4 != 4 {
            return Err(Error::NotIpv4);
        }
        let ihl = usize::from(first & 0x0f) * 4;
        let total = usize::from(u16_be(ip, 2).ok_or(Error::BadIpv4)?);
        if ihl < 20 || total < ihl || total > ip.len() {
            return Err(Error::BadIpv4);
        }
        let flags_frag = u16_be(ip, 6).ok_or(Error::BadIpv4)?;
        if flags_frag & 0x3fff != 0 {
            return Err(Error::Fragment);
        }
        let protocol = *ip.get(9).ok_or(Error::BadIpv4)?;
        if protocol != 17 {
            return Err(Error::NotUdp(protocol));
        }
        let addr = |at: usize| -> Result<Ipv4Addr, Error> {
            let o: [u8; 4] = ip
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .ok_or(Error::BadIpv4)?;
            Ok(Ipv4Addr::from(o))
        };
        let (src_ip, dst_ip) = (addr(12)?, addr(16)?);
        let udp = ip.get(ihl..total).ok_or(Error::BadIpv4)?;
        let sport = u16_be(udp, 0).ok_or(Error::BadUdp)?;
        let dport = u16_be(udp, 2).ok_or(Error::BadUdp)?;
        let ulen = usize::from(u16_be(udp, 4).ok_or(Error::BadUdp)?);
        if ulen < 8 || ulen > udp.len() {
            return Err(Error::BadUdp);
        }
        Ok(Udp {
            src: SocketAddrV4::new(src_ip, sport),
            dst: SocketAddrV4::new(dst_ip, dport),
            payload: udp.get(8..ulen).ok_or(Error::BadUdp)?,
        })
    }
}

/// What the meta file says about the capture.
struct Meta {
    shared_secret: Key32,
    shroud: bool,
    flock_a: u64,
    flock_b: u64,
    keylog: HashMap<u32, ([u8; 4], Key32)>,
    cathedral: Option<CathedralSide>,
}

/// The cathedral of a capture and its clients.
struct CathedralSide {
    main: SocketAddrV4,
    nat_port: u16,
    flock: u64,
    directory: MemoryDirectory,
    clients: HashMap<u32, ClientSide>,
    bundle_expires: u16,
    bundle_generation: u32,
    bundle_seed: [u8; 64],
    /// Replies seen per outcome: relay INFO, p2p INFO, new ambry.
    seen: Seen,
}

/// What the cathedral replies in a capture amounted to.
#[derive(Debug, Default)]
struct Seen {
    relay: usize,
    p2p: usize,
    ambries: usize,
    verified: usize,
}

/// One client of the cathedral as its configuration file describes it.
struct ClientSide {
    local: SocketAddrV4,
    client: CathedralClient,
}

/// `0x…` or bare hex.
fn hex_u64(s: &str) -> u64 {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("hex {s:?}: {e}"))
}

fn meta_hex(v: &Value, key: &str) -> Option<u64> {
    v[key].as_str().map(hex_u64)
}

/// The value of `keyword` in a sanctum.conf text.
fn conf_value<'a>(conf: &'a str, keyword: &str) -> Option<&'a str> {
    conf.lines().find_map(|l| {
        let l = l.trim_start();
        let (k, v) = l.split_once(' ')?;
        (k == keyword).then(|| v.trim())
    })
}

fn conf_addr(conf: &str, keyword: &str) -> SocketAddrV4 {
    conf_value(conf, keyword)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{keyword} ip:port in config"))
}

/// A throwaway COSK: replies from the cathedral are not signed, and the
/// client's own offers are not under test here.
fn throwaway_cosk() -> Secret<64> {
    Secret::new(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).to_keypair_bytes())
}

fn load_cathedral(meta: &Value, first_wall: u64) -> Option<CathedralSide> {
    let configs = meta["configs"].as_object()?;
    let cathedral_conf = configs
        .values()
        .filter_map(Value::as_str)
        .find(|c| conf_value(c, "mode") == Some("cathedral"))?;
    let main = conf_addr(cathedral_conf, "local");
    let nat_port: u16 = conf_value(cathedral_conf, "cathedral_nat_port")?
        .parse()
        .ok()?;
    let flock = meta_hex(meta, "cathedral_flock").expect("cathedral_flock");
    let secrets = meta["cathedral_secrets"]
        .as_object()
        .expect("cathedral_secrets");
    let publics = meta["cosk_public_keys"]
        .as_object()
        .expect("cosk_public_keys");
    let mut directory = MemoryDirectory::new();
    for (id, cs) in secrets {
        let public: [u8; 32] = unhex(publics[id].as_str().expect("public key"))
            .try_into()
            .expect("32-byte public key");
        let cs = Key32::from_slice(&unhex(cs.as_str().expect("cs"))).expect("32-byte CS");
        directory.add_client(flock, hex_u64(id) as u32, cs, public);
    }
    let mut clients = HashMap::new();
    for conf in configs.values().filter_map(Value::as_str) {
        let Some(id) = conf_value(conf, "cathedral_id").map(|v| hex_u64(v) as u32) else {
            continue;
        };
        let cs_hex = secrets
            .iter()
            .find(|(k, _)| hex_u64(k) as u32 == id)
            .and_then(|(_, v)| v.as_str())
            .expect("secret of the client's identity");
        let own_flock = hex_u64(conf_value(conf, "cathedral_flock").expect("flock"));
        assert_eq!(own_flock, flock);
        let mut cfg = ClientConfig::new(
            id,
            Key32::from_slice(&unhex(cs_hex)).expect("CS"),
            throwaway_cosk(),
            own_flock,
            hex_u64(conf_value(conf, "spi").expect("spi")) as u16,
            conf_addr(conf, "cathedral"),
        );
        cfg.has_kek = conf_value(conf, "kek").is_some();
        cfg.nat_port = conf_value(conf, "cathedral_nat_port").and_then(|p| p.parse().ok());
        let now = Now::new(Instant::ZERO, first_wall);
        let client = CathedralClient::new(cfg, now, &mut SeededEntropy::from_u64(u64::from(id)))
            .expect("client config");
        clients.insert(
            id,
            ClientSide {
                local: conf_addr(conf, "local"),
                client,
            },
        );
    }
    let head = unhex(
        meta["ambry_bundle_head"]
            .as_str()
            .expect("ambry_bundle_head"),
    );
    assert_eq!(head.len(), 70, "bundle header is 70 bytes");
    Some(CathedralSide {
        main,
        nat_port,
        flock,
        directory,
        clients,
        bundle_expires: u16::from_be_bytes([head[0], head[1]]),
        bundle_generation: u32::from_be_bytes([head[2], head[3], head[4], head[5]]),
        bundle_seed: head[6..70].try_into().expect("seed"),
        seen: Seen::default(),
    })
}

fn load_meta(name: &str, first_wall: u64) -> Meta {
    let meta = load_json(&format!("captures/{name}.meta.json"));
    assert_eq!(meta["pcap"], format!("{name}.pcap"));
    let mut keylog = HashMap::new();
    for k in arr(&meta, "keylog") {
        let spi = hex_u64(k["spi"].as_str().expect("spi")) as u32;
        keylog.insert(
            spi,
            (hexa::<4>(k, "salt"), Key32::new(hexa::<32>(k, "key"))),
        );
    }
    Meta {
        shared_secret: Key32::new(hexa::<32>(&meta, "shared_secret")),
        shroud: meta["shroud"].as_bool().expect("shroud flag"),
        flock_a: meta_hex(&meta, "flock_a").unwrap_or(0),
        flock_b: meta_hex(&meta, "flock_b").unwrap_or(0),
        keylog,
        cathedral: load_cathedral(&meta, first_wall),
    }
}

/// Our decode of one packet, in the decoded.json vocabulary.
#[derive(Debug, Default, PartialEq)]
struct Decoded {
    kind: String,
    unshrouded_len: Option<usize>,
    offer_type: Option<u8>,
    offer_timestamp: Option<u64>,
    exchange_state: Option<u8>,
    fragment: Option<u8>,
    spi: Option<u32>,
    pn: Option<u64>,
    next: Option<u8>,
    inner_len: Option<usize>,
    inner_proto: Option<u8>,
}

fn check_capture(name: &str) -> usize {
    let file = load_bytes(&format!("captures/{name}.pcap"));
    let capture = pcap::parse(&file).unwrap_or_else(|e| panic!("{name}.pcap: {e:?}"));
    assert_eq!(capture.link_type, pcap::ETHERNET, "{name}: link type");
    let decoded = load_json(&format!("captures/{name}.decoded.json"));
    let entries = arr(&decoded, "packets");
    assert_eq!(
        capture.records.len(),
        entries.len(),
        "{name}: packets in pcap vs decoded.json"
    );
    let first_wall = capture.records.first().map_or(0, |r| u64::from(r.ts_sec));
    let mut meta = load_meta(name, first_wall);
    if meta.shroud {
        assert!(
            meta.cathedral.is_none(),
            "shrouded cathedral captures need per-client keys"
        );
    }
    let peer_shroud = kdf::peer_shroud_key(&meta.shared_secret, meta.flock_a, meta.flock_b);
    let mut summary: HashMap<String, u64> = HashMap::new();
    let mut cases = 0;

    for (i, (rec, want)) in capture.records.iter().zip(entries).enumerate() {
        let ctx = format!("{name} packet {i}");
        let ip =
            pcap::ipv4_of(capture.link_type, &rec.data).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
        let udp = pcap::udp_of(ip).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
        let time = f64::from(rec.ts_sec) + f64::from(rec.ts_nanos) / 1e9;
        assert!(
            (time - want["time"].as_f64().expect("time")).abs() < 2e-6,
            "{ctx}: time"
        );
        assert_eq!(udp.src.to_string(), want["src"], "{ctx}: src");
        assert_eq!(udp.dst.to_string(), want["dst"], "{ctx}: dst");
        assert_eq!(
            udp.payload.len() as u64,
            want["udp_len"].as_u64().expect("udp_len"),
            "{ctx}: udp_len"
        );

        let mono = Instant::from_secs(u64::from(rec.ts_sec) - first_wall);
        let now = Now::new(mono, u64::from(rec.ts_sec));
        let got = decode_packet(&mut meta, &peer_shroud, &udp, now, &ctx);
        compare(&got, want, &ctx);
        *summary.entry(format!("{}:{}", got.kind, "ok")).or_default() += 1;
        assert_eq!(want["result"], "ok", "{ctx}: result");
        cases += 1;
    }

    if let Some(cat) = &meta.cathedral {
        // The capture shows registration, one ambry per client, relaying
        // and then the switch to p2p: every path above was exercised.
        let seen = &cat.seen;
        assert!(
            seen.verified > 0 && seen.relay > 0 && seen.p2p > 0,
            "{name}: {seen:?}"
        );
        assert_eq!(
            seen.ambries,
            cat.clients.len(),
            "{name}: one new ambry per client"
        );
    }
    if let Some(s) = decoded["summary"].as_object() {
        let want: HashMap<String, u64> = s
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
            .collect();
        assert_eq!(summary, want, "{name}: summary");
    }
    cases
}

fn compare(got: &Decoded, want: &Value, ctx: &str) {
    assert_eq!(got.kind, want["kind"], "{ctx}: kind");
    let opt = |key: &str| want.get(key).and_then(Value::as_u64);
    assert_eq!(
        got.unshrouded_len.map(|v| v as u64),
        opt("unshrouded_len"),
        "{ctx}: unshrouded_len"
    );
    assert_eq!(
        got.offer_type.map(u64::from),
        opt("offer_type"),
        "{ctx}: offer_type"
    );
    assert_eq!(
        got.offer_timestamp,
        opt("offer_timestamp"),
        "{ctx}: offer_timestamp"
    );
    assert_eq!(
        got.exchange_state.map(u64::from),
        opt("exchange_state"),
        "{ctx}: exchange_state"
    );
    assert_eq!(
        got.fragment.map(u64::from),
        opt("fragment"),
        "{ctx}: fragment"
    );
    assert_eq!(
        got.spi.map(|s| format!("{s:08x}")),
        want.get("spi").and_then(Value::as_str).map(str::to_owned),
        "{ctx}: spi"
    );
    assert_eq!(got.pn, opt("pn"), "{ctx}: pn");
    assert_eq!(got.next.map(u64::from), opt("next"), "{ctx}: next");
    assert_eq!(
        got.inner_len.map(|v| v as u64),
        opt("inner_len"),
        "{ctx}: inner_len"
    );
    assert_eq!(
        got.inner_proto.map(u64::from),
        opt("inner_proto"),
        "{ctx}: inner_proto"
    );
}

fn decode_packet(
    meta: &mut Meta,
    peer_shroud: &Key32,
    udp: &pcap::Udp<'_>,
    now: Now,
    ctx: &str,
) -> Decoded {
    let mut d = Decoded::default();
    let mut buf = udp.payload.to_vec();
    let inner = if meta.shroud {
        let r = shroud::unshroud_in_place(peer_shroud, &mut buf)
            .unwrap_or_else(|e| panic!("{ctx}: unshroud: {e}"));
        d.unshrouded_len = Some(r.len());
        &buf[r]
    } else {
        &buf[..]
    };
    match offer::classify(inner).unwrap_or_else(|| panic!("{ctx}: shorter than 8 bytes")) {
        PacketKind::Offer(magic) => {
            d.kind = format!(
                "offer/{}",
                String::from_utf8_lossy(&magic.value().to_be_bytes())
            );
            let o = open_offer(meta, magic, udp, inner, now, ctx);
            d.offer_type = Some(o.data()[0]);
            d.offer_timestamp = Some(o.timestamp());
            if let Ok(OfferBody::Exchange(x)) = o.body() {
                d.exchange_state = Some(x.state as u8);
                d.fragment = Some(x.fragment);
            }
        }
        PacketKind::Data => decode_data(meta, inner, &mut d, ctx),
    }
    d
}

fn open_offer(
    meta: &mut Meta,
    magic: Magic,
    udp: &pcap::Udp<'_>,
    inner: &[u8],
    now: Now,
    ctx: &str,
) -> Offer {
    let header = OfferHeader::parse(inner).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    if magic == Magic::Sacrament {
        let key = kdf::offer_key(
            &meta.shared_secret,
            OfferLabel::Sacrament,
            &header.seed,
            meta.flock_a,
            meta.flock_b,
        );
        let o = Offer::open(inner, &key).unwrap_or_else(|e| panic!("{ctx}: SACRAMNT: {e}"));
        o.check_timestamp(now.wall, TIMESTAMP_WINDOW)
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        if meta.flock_a != 0 {
            assert_eq!(
                (header.flock_src, header.flock_dst),
                (meta.flock_a, meta.flock_b),
                "{ctx}: exchange header flocks"
            );
        }
        return o;
    }
    let cat = meta
        .cathedral
        .as_mut()
        .unwrap_or_else(|| panic!("{ctx}: cathedral offer in a capture without cathedral"));
    if *udp.dst.ip() == *cat.main.ip() {
        // Client -> cathedral: the checks a cathedral applies.
        let v = check_offer(inner, now.wall, &cat.directory, None)
            .unwrap_or_else(|e| panic!("{ctx}: cathedral rejects {magic:?}: {e}"));
        let (source, port) = match magic {
            Magic::Katedral => (OfferSource::Client, cat.main.port()),
            Magic::Ciborium => (OfferSource::NatProbe, cat.nat_port),
            m => panic!("{ctx}: {m:?} to the cathedral"),
        };
        assert_eq!(v.source(), source);
        assert_eq!(udp.dst.port(), port, "{ctx}: destination port");
        assert_eq!(v.flock(), cat.flock);
        let client = cat.clients.get(&v.identity()).expect("known client");
        assert_eq!(udp.src, client.local, "{ctx}: sender");
        let OfferBody::Info(info) = v.body() else {
            panic!("{ctx}: client offer is not INFO")
        };
        assert_eq!(
            info.tunnel,
            client.client.info_body().tunnel,
            "{ctx}: tunnel id"
        );
        cat.seen.verified += 1;
        return v.offer().clone();
    }
    // Cathedral -> client: what the client makes of it.
    assert_eq!(
        udp.src, cat.main,
        "{ctx}: cathedral offers come from the main port"
    );
    assert_eq!(magic, Magic::Katedral, "{ctx}: reply magic");
    let cs = cat
        .directory
        .cathedral_secret(cat.flock & !0xff, header.spi)
        .unwrap_or_else(|| panic!("{ctx}: reply for unknown identity {:#x}", header.spi));
    let key = kdf::offer_key(&cs, OfferLabel::Cathedral, &header.seed, cat.flock, 0);
    let o = Offer::open(inner, &key).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    o.check_timestamp(now.wall, TIMESTAMP_WINDOW)
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let main = cat.main;
    let (bundle_expires, bundle_generation, bundle_seed) =
        (cat.bundle_expires, cat.bundle_generation, cat.bundle_seed);
    let others: Vec<SocketAddrV4> = cat.clients.values().map(|c| c.local).collect();
    let side = cat
        .clients
        .get_mut(&header.spi)
        .expect("client of the identity");
    assert_eq!(udp.dst, side.local, "{ctx}: reply goes to the client");
    side.client
        .handle_datagram(now, udp.src, inner)
        .unwrap_or_else(|e| panic!("{ctx}: client drops the reply: {e}"));
    assert_eq!(side.client.last_heard(), now.mono);
    match side.client.poll_event().expect("an event per reply") {
        CathedralEvent::Ambry(a) => {
            assert_eq!(
                a.tunnel,
                side.client.info_body().tunnel,
                "{ctx}: ambry tunnel"
            );
            assert_eq!(
                (a.expires, a.generation, a.seed),
                (bundle_expires, bundle_generation, bundle_seed),
                "{ctx}: ambry carries the bundle header"
            );
            // As the tunnel does once the ambry module installed it.
            side.client.set_ambry_generation(a.generation);
            cat.seen.ambries += 1;
        }
        CathedralEvent::Ignored {
            reason: IgnoreReason::AmbryCurrentGeneration(g),
            ..
        } => assert_eq!(g, bundle_generation),
        CathedralEvent::PeerInfo(p) => {
            let peer = p.peer.expect("INFO reply names a peer");
            assert!(
                peer == main || (others.contains(&peer) && peer != side.local),
                "{ctx}: peer {peer} is neither the cathedral nor the other client"
            );
            assert_eq!(p.relayed, peer == main);
            if p.relayed {
                cat.seen.relay += 1;
            } else {
                cat.seen.p2p += 1;
            }
        }
        e => panic!("{ctx}: unexpected event {e:?}"),
    }
    assert_eq!(side.client.poll_event(), None);
    o
}

/// Opens a data packet with the data path module (wire.md §3) under the
/// keylog's key for its SPI.
fn decode_data(meta: &Meta, pkt: &[u8], d: &mut Decoded, ctx: &str) {
    d.kind = "data".into();
    let header = data::Header::parse(pkt).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let receiver = data::DataConfig {
        flock_src: meta.flock_b,
        flock_dst: meta.flock_a,
        tfc_mtu: None,
    };
    assert!(receiver.flocks_match(&header), "{ctx}: flocks {header:?}");
    let (salt, key) = meta
        .keylog
        .get(&header.spi)
        .unwrap_or_else(|| panic!("{ctx}: spi {:08x} not in the keylog", header.spi));
    let mut packet = pkt.to_vec();
    let tail = data::open_in_place(&Cipher::new(key), salt, &header, &mut packet)
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let next = tail.next().unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let payload = &packet[data::payload_range(packet.len())];
    d.spi = Some(header.spi);
    d.pn = Some(header.pn);
    d.next = Some(next.to_u8());
    d.inner_len = Some(payload.len());
    if next == data::Next::Traffic && payload.first().is_some_and(|b| b >> 4 == 4) {
        d.inner_proto = payload.get(9).copied();
    }
}

#[test]
fn pcap_reader_is_safe_on_hostile_input() {
    use pcap::Error;
    assert_eq!(
        pcap::parse(&[]).unwrap_err(),
        Error::Truncated("global header")
    );
    assert_eq!(pcap::parse(&[0u8; 24]).unwrap_err(), Error::BadMagic(0));
    // Big-endian nanosecond file with one raw-IPv4 UDP record.
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip.extend_from_slice(&[0x09, 0x1d, 0x11, 0x94, 0, 11, 0, 0, 0xaa, 0xbb, 0xcc]);
    let total = ip.len() as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_3c4du32.to_be_bytes());
    f.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&65535u32.to_be_bytes());
    f.extend_from_slice(&pcap::RAW.to_be_bytes());
    f.extend_from_slice(&7u32.to_be_bytes());
    f.extend_from_slice(&5u32.to_be_bytes());
    f.extend_from_slice(&(ip.len() as u32).to_be_bytes());
    f.extend_from_slice(&(ip.len() as u32).to_be_bytes());
    f.extend_from_slice(&ip);
    let c = pcap::parse(&f).unwrap();
    assert_eq!((c.link_type, c.records.len()), (pcap::RAW, 1));
    assert_eq!((c.records[0].ts_sec, c.records[0].ts_nanos), (7, 5));
    let u = pcap::udp_of(pcap::ipv4_of(c.link_type, &c.records[0].data).unwrap()).unwrap();
    assert_eq!(u.src, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 2333));
    assert_eq!(u.dst, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4500));
    assert_eq!(u.payload, &[0xaa, 0xbb, 0xcc]);
    // Linux cooked capture framing of the same packet.
    let mut sll = vec![0u8; 14];
    sll.extend_from_slice(&[0x08, 0x00]);
    sll.extend_from_slice(&ip);
    assert_eq!(
        pcap::udp_of(pcap::ipv4_of(pcap::LINUX_SLL, &sll).unwrap()).unwrap(),
        u
    );
    // Every truncation and corruption is an error, never a panic.
    for n in 0..f.len() {
        let _ = pcap::parse(&f[..n]);
    }
    for n in 0..ip.len() {
        let _ = pcap::udp_of(&ip[..n]);
        let mut bad = ip.clone();
        bad[n] ^= 0xff;
        let _ = pcap::udp_of(&bad);
    }
    let mut frag = ip.clone();
    frag[6] = 0x20;
    assert_eq!(pcap::udp_of(&frag).unwrap_err(), Error::Fragment);
    let mut long = f.clone();
    long[32..36].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    assert_eq!(
        pcap::parse(&long).unwrap_err(),
        Error::RecordTooLong(0x7fff_ffff)
    );
}
