//! Sockets: one task reads the UDP socket, one accepts TCP connections (each connection gets a
//! reader task and a writer task), and one engine task owns the [`SipCore`]. Parsing and the
//! stateless checks happen in the transport tasks; only messages that passed them reach the
//! engine, over a bounded channel (a UDP flood that outruns the engine is dropped and counted
//! rather than queued without end).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use switchboard_sip::transaction::Peer;
use switchboard_sip::{Limits, StreamEvent, StreamParser, Transport, UasPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::calls::CallNotice;
use super::ua::{CoreOutput, SipCore, Triaged, count_drop, triage_bytes, triage_parsed};
use super::{BindingTable, Command};
use crate::clock::Clock;

/// Most simultaneous TCP connections; more are closed at once.
const MAX_CONNECTIONS: usize = 1024;
/// A TCP connection with no bytes for this long is closed (phones send CRLF keep-alives,
/// RFC 5626 3.5.1, or re-register well within it).
const IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Queued outgoing messages per TCP connection before further ones are dropped.
const WRITE_QUEUE: usize = 256;

/// Writers of the open TCP connections, by remote address.
pub type Connections = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// Reads datagrams until the socket fails or the engine is gone.
pub async fn udp_loop(socket: Arc<UdpSocket>, engine: mpsc::Sender<Command>) {
    let policy = UasPolicy::default();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors of earlier sends surface here on some systems: not fatal.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
            Err(e) => {
                tracing::error!(error = %e, "SIP UDP socket failed");
                return;
            }
        };
        let peer = Peer {
            transport: Transport::Udp,
            addr: from,
        };
        match triage_bytes(&buf[..n], &policy) {
            Triaged::Accept(message) => {
                if engine.is_closed() {
                    return;
                }
                if engine.try_send(Command::Message { message, peer }).is_err() {
                    count_drop("overload");
                }
            }
            Triaged::Reply(bytes) => {
                let _ = socket.send_to(&bytes, from).await;
            }
            Triaged::Dropped => {}
        }
    }
}

/// Accepts TCP connections until the listener fails.
pub async fn tcp_accept_loop(
    listener: TcpListener,
    engine: mpsc::Sender<Command>,
    connections: Connections,
) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait a little, keep serving.
                tracing::warn!(error = %e, "SIP TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if engine.is_closed() {
            return;
        }
        let open = connections.lock().map(|c| c.len()).unwrap_or(usize::MAX);
        if open >= MAX_CONNECTIONS {
            count_drop("too_many_connections");
            continue;
        }
        tokio::spawn(connection(
            stream,
            from,
            engine.clone(),
            connections.clone(),
        ));
    }
}

async fn connection(
    stream: TcpStream,
    from: SocketAddr,
    engine: mpsc::Sender<Command>,
    connections: Connections,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    if let Ok(mut c) = connections.lock() {
        c.insert(from, tx.clone());
    }
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let policy = UasPolicy::default();
    let mut parser = StreamParser::new(Limits::default());
    let mut buf = vec![0u8; 16 * 1024];
    let peer = Peer {
        transport: Transport::Tcp,
        addr: from,
    };
    'read: loop {
        let n = match tokio::time::timeout(IDLE_TIMEOUT, reader.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        parser.push(&buf[..n]);
        loop {
            let event = match parser.poll_event() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(_) => {
                    // Framing is lost (no usable Content-Length, too large): close.
                    count_drop("stream_framing");
                    break 'read;
                }
            };
            let verdict = match event {
                StreamEvent::Message(m) => triage_parsed(m, &policy),
                StreamEvent::Invalid { frame, .. } => triage_bytes(&frame, &policy),
                StreamEvent::KeepAlive => {
                    // RFC 5626 3.5.1: a CRLFCRLF ping gets a CRLF pong.
                    let _ = tx.try_send(b"\r\n".to_vec());
                    continue;
                }
            };
            match verdict {
                Triaged::Accept(message) => {
                    if engine
                        .send(Command::Message {
                            message,
                            peer: peer.clone(),
                        })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Triaged::Reply(bytes) => {
                    let _ = tx.try_send(bytes);
                }
                Triaged::Dropped => {}
            }
        }
    }
    if let Ok(mut c) = connections.lock() {
        c.remove(&from);
    }
    drop(tx);
    let _ = write_task.await;
}

/// The engine: owns the core, wakes at its deadlines, sends what it says.
#[allow(clippy::too_many_arguments)]
pub async fn engine_loop(
    mut core: SipCore,
    clock: Clock,
    mut commands: mpsc::Receiver<Command>,
    udp: Arc<UdpSocket>,
    connections: Connections,
    table: Arc<RwLock<BindingTable>>,
    notices: mpsc::UnboundedSender<CallNotice>,
    mut anchor: super::media::Anchor,
    mut media_events: mpsc::UnboundedReceiver<(u64, super::media::MediaEvent)>,
) {
    use super::media::MediaEvent;
    loop {
        if let Some(ports) = core.calls_mut().media.as_mut() {
            anchor.top_up(ports);
        }
        let deadline = core.poll_timeout();
        tokio::select! {
            ev = media_events.recv() => {
                let Some((call, ev)) = ev else { break };
                let now = clock.mono();
                match ev {
                    MediaEvent::TimedOut(leg) => {
                        core.media_timed_out(now, super::calls::CallKey(call), leg)
                    }
                    MediaEvent::Recorded { path, frames, paused } => {
                        anchor.finished_recording(call, path, frames, paused)
                    }
                    MediaEvent::Stopped { caller, agent, .. } => anchor.stopped(call, caller, agent),
                    MediaEvent::Digit(..) | MediaEvent::Played(..) | MediaEvent::Silent(..) => {}
                }
                core.flush_calls(now);
            }
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { break };
                let now = clock.mono();
                match cmd {
                    Command::Message { message, peer } => core.handle_message(now, message, peer),
                    Command::Credentials(all) => {
                        core.registrar_mut().replace_credentials(all);
                        // Bindings of removed accounts went with them.
                        core.handle_timeout(now);
                    }
                    Command::Directory(d) => core.calls_mut().directory = d,
                    Command::Queued { call, result } => core.call_queued(now, call, result),
                    Command::Offer { tenant, interaction, agent, aor, contacts } => {
                        let (user, realm) = aor.map(|a| (a.user, a.realm)).unwrap_or_default();
                        core.offer(now, tenant, interaction, agent, &user, &realm, contacts)
                    }
                    Command::Dial { tenant, interaction, agent, aor, contacts, number } => {
                        let (user, realm) = aor.map(|a| (a.user, a.realm)).unwrap_or_default();
                        core.dial(now, tenant, interaction, agent, &user, &realm, contacts, number.expose())
                    }
                    Command::OfferEnded { interaction, agent } => {
                        core.offer_withdrawn(now, interaction, agent)
                    }
                    Command::Accepted { interaction, ok } => core.accepted(now, interaction, ok),
                    Command::Requeued(i) => core.requeued(now, i),
                    Command::TransferOut {
                        interaction,
                        number,
                    } => core.transfer_out(now, interaction, number.expose()),
                    Command::HangUp(i) => core.hang_up(now, i),
                    Command::HangUpCall(call) => core.hang_up_call(now, call),
                    Command::Hold { interaction, hold, reply } => {
                        let _ = reply.send(core.hold_interaction(now, interaction, hold));
                    }
                    Command::Record { interaction, action } => {
                        if let Some(call) = core.call_of(interaction) {
                            anchor.record(call, interaction, action);
                        }
                    }
                }
                core.flush_calls(now);
            }
            () = sleep_until(&clock, deadline), if deadline.is_some() => {
                core.handle_timeout(clock.mono());
            }
        }
        while let Some(out) = core.poll_output() {
            match out {
                CoreOutput::Transmit { peer, bytes } => {
                    send(&udp, &connections, &peer, bytes).await;
                }
                CoreOutput::Call(n) => {
                    let _ = notices.send(n);
                }
                CoreOutput::Media { call, op } => {
                    if !anchor.handle(call, op) {
                        let now = clock.mono();
                        core.media_failed(now, call);
                        core.flush_calls(now);
                    }
                }
                CoreOutput::Bindings { aor, bindings } => {
                    if let Ok(mut t) = table.write() {
                        if bindings.is_empty() {
                            t.remove(&aor);
                        } else {
                            t.insert(aor, bindings);
                        }
                    }
                }
            }
        }
    }
}

async fn sleep_until(clock: &Clock, deadline: Option<switchboard_model::MonoTime>) {
    if let Some(at) = deadline {
        tokio::time::sleep_until(clock.tokio_instant(at)).await;
    }
}

async fn send(udp: &UdpSocket, connections: &Connections, peer: &Peer, bytes: Vec<u8>) {
    match peer.transport {
        Transport::Udp => {
            if let Err(e) = udp.send_to(&bytes, peer.addr).await {
                tracing::debug!(error = %e, to = %peer.addr, "SIP UDP send failed");
            }
        }
        _ => {
            let writer = connections
                .lock()
                .ok()
                .and_then(|c| c.get(&peer.addr).cloned());
            match writer {
                Some(w) if w.try_send(bytes).is_ok() => {}
                // Outgoing connections come with the B2BUA; a closed or clogged one drops.
                _ => count_drop("no_connection"),
            }
        }
    }
}
