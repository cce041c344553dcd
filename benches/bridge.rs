//! The call bridge per packet, without sockets: 300 calls, each leg sending a 20 ms G.711 packet
//! every 20 ms of virtual time, driven like the media task drives it (`handle_datagram`, the
//! outputs drained, `poll_timeout` after every datagram, `handle_timeout` when due). Prints the
//! CPU time per relayed packet, PCMU both ways and transcoding, with RTCP terminated on every
//! leg (reports every 5 s, as calls run) and without it.
//!
//! `cargo bench -p switchboard-media --bench bridge`. What a packet costs end to end (sockets,
//! the task's wake-ups) is `switchboard bench rtp`; this isolates the bridge's own share, so a
//! change to it (RTCP, silence detection) can be compared before and after.
// Benchmarks measure wall time, which the workspace's clippy.toml bans elsewhere (DESIGN rule 2).
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;
use switchboard_media::g711::Law;
use switchboard_media::relay::{Bridge, Leg, LegMedia};
use switchboard_media::rtp::Header;

const CALLS: usize = 300;
/// 15 s of 20 ms packets.
const TICKS: u32 = 750;
const RUNS: usize = 7;

fn packet(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    Header {
        marker: false,
        payload_type: pt,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc,
        csrc: Vec::new(),
    }
    .write(payload, &mut b);
    b
}

fn media(law: Law, remote: SocketAddr) -> LegMedia {
    LegMedia {
        law,
        payload_type: law.payload_type(),
        telephone_event: Some(101),
        remote: Some(remote),
        rtcp: None,
        rtcp_mux: false,
    }
}

fn drain(b: &mut Bridge) -> u64 {
    let mut n = 0;
    while let Some(o) = b.poll_output() {
        black_box(o);
        n += 1;
    }
    n
}

/// One run: nanoseconds per packet, and the outputs (relayed packets and reports).
fn run(transcode: bool, rtcp: bool) -> (f64, u64) {
    let caller_law = if transcode { Law::Alaw } else { Law::Ulaw };
    let mut calls: Vec<(Bridge, SocketAddr, SocketAddr)> = (0..CALLS)
        .map(|i| {
            let c = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 4000));
            let a = SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8 + 1], 5000));
            let mut b = Bridge::new(30_000);
            if rtcp {
                b.enable_rtcp(5000, 1_700_000_000_000, "switchboard@192.0.2.1:20000");
            }
            b.set_media(Leg::Caller, media(caller_law, c));
            b.set_media(Leg::Agent, media(Law::Ulaw, a));
            (b, c, a)
        })
        .collect();
    let caller_payload = vec![caller_law.encode_sample(1000); 160];
    let agent_payload = vec![Law::Ulaw.encode_sample(1000); 160];
    let (mut outputs, mut packets) = (0u64, 0u64);
    let start = Instant::now();
    for t in 0..TICKS {
        let now = u64::from(t) * 20;
        let seq = t as u16;
        let from_caller = packet(caller_law.payload_type(), seq, 1, &caller_payload);
        let from_agent = packet(0, seq, 2, &agent_payload);
        for (b, c, a) in &mut calls {
            for (at, leg, from, d) in [
                (now, Leg::Caller, *c, &from_caller),
                (now + 1, Leg::Agent, *a, &from_agent),
            ] {
                b.handle_datagram(at, leg, from, d);
                outputs += drain(b);
                if b.poll_timeout().is_some_and(|w| w <= at) {
                    b.handle_timeout(at);
                    outputs += drain(b);
                }
                packets += 1;
            }
        }
    }
    (start.elapsed().as_nanos() as f64 / packets as f64, outputs)
}

fn main() {
    println!("{CALLS} calls, {TICKS} packets per leg, best of {RUNS} runs");
    for transcode in [false, true] {
        for rtcp in [false, true] {
            let mut runs: Vec<f64> = Vec::new();
            let mut outputs = 0;
            for _ in 0..RUNS {
                let (ns, out) = run(transcode, rtcp);
                runs.push(ns);
                outputs = out;
            }
            let best = runs.iter().copied().fold(f64::MAX, f64::min);
            println!(
                "{:<12} RTCP {:<3}: {best:6.1} ns per packet (median {:.1}), {outputs} outputs",
                if transcode { "PCMA->PCMU" } else { "PCMU" },
                if rtcp { "on" } else { "off" },
                {
                    runs.sort_by(f64::total_cmp);
                    runs[RUNS / 2]
                },
            );
        }
    }
}
