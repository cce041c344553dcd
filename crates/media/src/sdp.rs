//! SDP (RFC 4566) as far as telephony audio needs it, and RFC 3264 offer/answer for G.711 with
//! telephone-event.
//!
//! [`parse`] reads a session description, keeping the parts a media anchor uses: the connection
//! address, each media section's port, formats, `rtpmap`, `fmtp`, `ptime`, direction, and where
//! RTCP goes (`a=rtcp`, RFC 3605; `a=rtcp-mux`, RFC 5761).
//! [`answer`] picks what to use from an offer (the offerer's most preferred of PCMU and PCMA,
//! telephone-event if offered, the direction that mirrors the offer: RFC 3264 §6.1) and writes
//! the answer; [`offer`] writes an offer. Our descriptions name our RTCP port (`a=rtcp`, the RTP
//! port + 1), or answer `a=rtcp-mux` to an offer of it. Unknown lines are skipped, as RFC 4566
//! §5 allows.

use crate::g711::Law;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

/// Why a session description cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// A line that SDP requires is missing or unreadable.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No audio stream with a codec we speak (answer `488 Not Acceptable Here`).
    #[error("no acceptable audio codec (PCMU or PCMA)")]
    NoCodec,
}

/// Media direction attributes (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Both ways (the default).
    #[default]
    SendRecv,
    /// The sender of this description only sends (it holds the other side: music on hold).
    SendOnly,
    /// It only receives.
    RecvOnly,
    /// Neither (a hold that stops media).
    Inactive,
}

impl Direction {
    /// The direction an answer gives to an offer of `self`.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the other side is put on hold by a description with this direction.
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `image` ...
    pub kind: String,
    /// Port (0: the stream is refused or removed).
    pub port: u16,
    /// Transport, e.g. `RTP/AVP`.
    pub proto: String,
    /// Payload types in order of preference.
    pub formats: Vec<u8>,
    /// The section's own `c=` address, if any.
    pub connection: Option<IpAddr>,
    /// `a=rtpmap`: payload type, encoding name, clock rate.
    pub rtpmap: Vec<(u8, String, u32)>,
    /// `a=fmtp`: payload type, parameters.
    pub fmtp: Vec<(u8, String)>,
    /// `a=ptime`, milliseconds.
    pub ptime: Option<u32>,
    /// Direction.
    pub direction: Direction,
    /// `a=rtcp` (RFC 3605): the RTCP port, and its address when it is not the stream's.
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    /// `a=rtcp-mux` (RFC 5761): RTCP on the RTP port.
    pub rtcp_mux: bool,
}

impl Media {
    /// The encoding name and clock rate of payload type `pt` (static types of RFC 3551 when no
    /// rtpmap names them).
    pub fn encoding(&self, pt: u8) -> Option<(String, u32)> {
        if let Some((_, name, rate)) = self.rtpmap.iter().find(|(p, _, _)| *p == pt) {
            return Some((name.to_ascii_uppercase(), *rate));
        }
        match pt {
            0 => Some(("PCMU".into(), 8000)),
            8 => Some(("PCMA".into(), 8000)),
            _ => None,
        }
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction (media sections may override it).
    pub direction: Direction,
    /// Media sections in order.
    pub media: Vec<Media>,
}

impl Session {
    /// The first audio section that is not refused (port 0), with its address.
    pub fn audio(&self) -> Option<(&Media, Option<IpAddr>)> {
        self.media
            .iter()
            .find(|m| m.kind == "audio" && m.port != 0)
            .map(|m| (m, m.connection.or(self.connection)))
    }
}

fn bad(what: &str) -> SdpError {
    SdpError::Malformed(what.to_owned())
}

fn connection_addr(v: &str) -> Result<IpAddr, SdpError> {
    // c=IN IP4 192.0.2.1 (a multicast TTL suffix /127 is dropped).
    let mut it = v.split_whitespace();
    let (net, _ty, addr) = (it.next(), it.next(), it.next());
    if net != Some("IN") {
        return Err(bad("c= is not IN"));
    }
    let addr = addr.ok_or_else(|| bad("c= without address"))?;
    let addr = addr.split('/').next().unwrap_or(addr);
    addr.parse().map_err(|_| bad("c= address"))
}

/// Parses a session description.
pub fn parse(text: &str) -> Result<Session, SdpError> {
    let mut s = Session {
        connection: None,
        direction: Direction::SendRecv,
        media: Vec::new(),
    };
    let mut saw_version = false;
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(bad("a line without ="));
        };
        match k {
            "v" => {
                if v.trim() != "0" {
                    return Err(bad("v= is not 0"));
                }
                saw_version = true;
            }
            "c" => {
                let addr = connection_addr(v)?;
                match s.media.last_mut() {
                    Some(m) => m.connection = Some(addr),
                    None => s.connection = Some(addr),
                }
            }
            "m" => {
                let mut it = v.split_whitespace();
                let kind = it.next().ok_or_else(|| bad("m= kind"))?.to_owned();
                let port = it
                    .next()
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| bad("m= port"))?;
                let proto = it.next().ok_or_else(|| bad("m= proto"))?.to_owned();
                let formats = it.filter_map(|f| f.parse::<u8>().ok()).collect();
                s.media.push(Media {
                    kind,
                    port,
                    proto,
                    formats,
                    connection: None,
                    rtpmap: Vec::new(),
                    fmtp: Vec::new(),
                    ptime: None,
                    direction: s.direction,
                    rtcp: None,
                    rtcp_mux: false,
                });
            }
            "a" => {
                let (name, value) = v.split_once(':').unwrap_or((v, ""));
                let dir = match name {
                    "sendrecv" => Some(Direction::SendRecv),
                    "sendonly" => Some(Direction::SendOnly),
                    "recvonly" => Some(Direction::RecvOnly),
                    "inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                if let Some(d) = dir {
                    match s.media.last_mut() {
                        Some(m) => m.direction = d,
                        None => s.direction = d,
                    }
                    continue;
                }
                let Some(m) = s.media.last_mut() else {
                    continue;
                };
                match name {
                    "rtpmap" => {
                        let (pt, enc) = value.split_once(' ').ok_or_else(|| bad("a=rtpmap"))?;
                        let pt = pt.trim().parse::<u8>().map_err(|_| bad("a=rtpmap type"))?;
                        let mut parts = enc.trim().split('/');
                        let name = parts.next().unwrap_or_default().to_owned();
                        let rate = parts
                            .next()
                            .and_then(|r| r.parse::<u32>().ok())
                            .ok_or_else(|| bad("a=rtpmap rate"))?;
                        m.rtpmap.push((pt, name, rate));
                    }
                    "fmtp" => {
                        if let Some((pt, params)) = value.split_once(' ')
                            && let Ok(pt) = pt.trim().parse::<u8>()
                        {
                            m.fmtp.push((pt, params.trim().to_owned()));
                        }
                    }
                    "ptime" => m.ptime = value.trim().parse().ok(),
                    "rtcp" => {
                        // a=rtcp:53020 [IN IP4 126.16.64.4]
                        let mut it = value.split_whitespace();
                        if let Some(port) = it.next().and_then(|p| p.parse::<u16>().ok()) {
                            let addr = (it.next() == Some("IN"))
                                .then(|| it.nth(1).and_then(|a| a.parse().ok()))
                                .flatten();
                            m.rtcp = Some((port, addr));
                        }
                    }
                    "rtcp-mux" => m.rtcp_mux = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !saw_version {
        return Err(bad("no v= line"));
    }
    Ok(s)
}

/// What an offer/answer exchange settled on for the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec.
    pub law: Law,
    /// Its payload type (0 or 8).
    pub payload_type: u8,
    /// The telephone-event payload type, if both sides have it.
    pub telephone_event: Option<u8>,
    /// Where the other side receives RTP.
    pub remote: SocketAddr,
    /// The direction of the other side's description.
    pub remote_direction: Direction,
    /// Packet time to send, milliseconds.
    pub ptime: u32,
    /// Where the other side receives RTCP, if its description says (`a=rtcp`).
    pub rtcp: Option<SocketAddr>,
    /// RTCP and RTP share the port (both descriptions have `a=rtcp-mux`).
    pub rtcp_mux: bool,
}

impl Media {
    fn rtcp_addr(&self, addr: IpAddr) -> Option<SocketAddr> {
        self.rtcp
            .map(|(port, ip)| SocketAddr::new(ip.unwrap_or(addr), port))
    }
}

/// Our side of a stream, for writing descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// The address and port we receive RTP on.
    pub addr: SocketAddr,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` version (incremented with each new description of the session).
    pub version: u64,
}

fn write_head(out: &mut String, local: &Local) {
    let ip = local.addr.ip();
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let _ = write!(
        out,
        "v=0\r\no=switchboard {} {} IN {fam} {ip}\r\ns=switchboard\r\nc=IN {fam} {ip}\r\nt=0 0\r\n",
        local.session_id, local.version
    );
}

#[allow(clippy::too_many_arguments)]
fn write_audio(
    out: &mut String,
    port: u16,
    laws: &[(Law, u8)],
    te: Option<u8>,
    dir: Direction,
    ptime: u32,
    mux: bool,
) {
    let mut fmts: Vec<String> = laws.iter().map(|(_, pt)| pt.to_string()).collect();
    if let Some(t) = te {
        fmts.push(t.to_string());
    }
    let _ = write!(out, "m=audio {port} RTP/AVP {}\r\n", fmts.join(" "));
    for (law, pt) in laws {
        let name = match law {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        };
        let _ = write!(out, "a=rtpmap:{pt} {name}/8000\r\n");
    }
    if let Some(t) = te {
        let _ = write!(
            out,
            "a=rtpmap:{t} telephone-event/8000\r\na=fmtp:{t} 0-16\r\n"
        );
    }
    let _ = write!(out, "a=ptime:{ptime}\r\na={}\r\n", dir.attr());
    // Our RTCP: on the RTP port when muxed (RFC 5761 §5.1.1), else the next port (RFC 3605).
    if mux {
        out.push_str("a=rtcp-mux\r\n");
    } else {
        let _ = write!(out, "a=rtcp:{}\r\n", port.wrapping_add(1));
    }
}

/// An offer of PCMU and PCMA (in `laws` order) and telephone-event on payload type `te`.
pub fn offer(local: &Local, laws: &[Law], te: Option<u8>, dir: Direction) -> String {
    let mut out = String::new();
    write_head(&mut out, local);
    let laws: Vec<(Law, u8)> = laws.iter().map(|l| (*l, l.payload_type())).collect();
    write_audio(&mut out, local.addr.port(), &laws, te, dir, 20, false);
    out
}

/// The answer to `offer` from `local`, accepting the offerer's most preferred of the laws we
/// `support`, and what was negotiated.
pub fn answer(
    offer: &Session,
    local: &Local,
    support: &[Law],
) -> Result<(String, Negotiated), SdpError> {
    let (m, addr) = offer.audio().ok_or(SdpError::NoCodec)?;
    let addr = addr.ok_or_else(|| bad("no c= address for the audio stream"))?;
    let (law, pt) = m
        .formats
        .iter()
        .find_map(|&pt| {
            let (name, rate) = m.encoding(pt)?;
            let law = match (name.as_str(), rate) {
                ("PCMU", 8000) => Law::Ulaw,
                ("PCMA", 8000) => Law::Alaw,
                _ => return None,
            };
            support.contains(&law).then_some((law, pt))
        })
        .ok_or(SdpError::NoCodec)?;
    let te = m.formats.iter().copied().find(|&pt| {
        m.encoding(pt)
            .is_some_and(|(n, r)| n == "TELEPHONE-EVENT" && r == 8000)
    });
    let ptime = m.ptime.filter(|p| (10..=60).contains(p)).unwrap_or(20);
    let mut out = String::new();
    write_head(&mut out, local);
    // Refused sections are answered with port 0 in their place (RFC 3264 §6).
    for other in &offer.media {
        if std::ptr::eq(other, m) {
            write_audio(
                &mut out,
                local.addr.port(),
                &[(law, pt)],
                te,
                m.direction.answer(),
                ptime,
                m.rtcp_mux,
            );
        } else {
            let fmts: Vec<String> = other.formats.iter().map(u8::to_string).collect();
            let _ = write!(
                out,
                "m={} 0 {} {}\r\n",
                other.kind,
                other.proto,
                if fmts.is_empty() {
                    "0".to_owned()
                } else {
                    fmts.join(" ")
                }
            );
        }
    }
    Ok((
        out,
        Negotiated {
            law,
            payload_type: pt,
            telephone_event: te,
            remote: SocketAddr::new(addr, m.port),
            remote_direction: m.direction,
            ptime,
            rtcp: m.rtcp_addr(addr),
            rtcp_mux: m.rtcp_mux,
        },
    ))
}

/// What an answer to our offer settled on.
pub fn accept_answer(ans: &Session) -> Result<Negotiated, SdpError> {
    let (m, addr) = ans.audio().ok_or(SdpError::NoCodec)?;
    let addr = addr.ok_or_else(|| bad("no c= address for the audio stream"))?;
    let (law, pt) = m
        .formats
        .iter()
        .find_map(|&pt| match m.encoding(pt)?.0.as_str() {
            "PCMU" => Some((Law::Ulaw, pt)),
            "PCMA" => Some((Law::Alaw, pt)),
            _ => None,
        })
        .ok_or(SdpError::NoCodec)?;
    let te = m
        .formats
        .iter()
        .copied()
        .find(|&pt| m.encoding(pt).is_some_and(|(n, _)| n == "TELEPHONE-EVENT"));
    Ok(Negotiated {
        law,
        payload_type: pt,
        telephone_event: te,
        remote: SocketAddr::new(addr, m.port),
        remote_direction: m.direction,
        ptime: m.ptime.unwrap_or(20),
        rtcp: m.rtcp_addr(addr),
        // Our offers do not offer rtcp-mux: an answer cannot choose it (RFC 5761 §5.1.1).
        rtcp_mux: false,
    })
}
