//! A real softphone as an agent's phone: baresip (Debian's baresip-core, run headless with a
//! generated config directory) registers as agent1 with digest authentication and answers
//! on its own (`;answermode=auto`); a SIPp caller on the demo trunk reaches it through the
//! queue. baresip missing is a failure, not a skip: `./scripts/test.sh` installs it.
//!
//! baresip 1.0 (libre) gives up on a 401 that carries a challenge of an algorithm it does not
//! know instead of ignoring it (RFC 8760 2.4 asks UAs to ignore them), so this server offers
//! MD5 alone (`[voice] digest_algorithms`), as a deployment with such phones would.

mod common;
mod helpers;
mod sipkit;

use common::{Server, TempDir};
use helpers::events_of;
use sipkit::sipp;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A baresip phone registering as `user` (password `agent`) with `sip`, listening on a free
/// port of 127.0.0.1, configured in `dir`.
fn spawn_baresip(dir: &std::path::Path, sip: std::net::SocketAddr, user: &str) -> Child {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    // No sound card: the audio bridge is both player and source.
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\nmodule_path /usr/lib/baresip/modules\n\
         module g711.so\nmodule aubridge.so\nmodule_app account.so\nmodule_app menu.so\n\
         audio_player aubridge,sb\naudio_source aubridge,sb\naudio_alert aubridge,sb\n\
         rtp_ports 30000-39998\n"
    );
    std::fs::write(dir.join("config"), config).expect("config");
    let account = format!("<sip:{user}@{sip}>;auth_pass=agent;answermode=auto;regint=600\n");
    std::fs::write(dir.join("accounts"), account).expect("accounts");
    Command::new("baresip")
        .arg("-f")
        .arg(dir)
        .args(["-t", "60"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run baresip (Debian package baresip-core; ./scripts/test.sh installs it)")
}

#[tokio::test]
async fn a_baresip_phone_registers_as_an_agent_and_answers_a_queued_caller() {
    let dir = TempDir::new("voice-baresip");
    let phone_dir = TempDir::new("voice-baresip-phone");
    let work = TempDir::new("voice-baresip-logs");
    let config = dir.0.join("switchboard.toml");
    std::fs::write(&config, "[voice]\ndigest_algorithms = [\"MD5\"]\n").expect("config");
    let s = Server::start_with(&dir.0, &["--config", config.to_str().expect("path")], &[]);
    let sip = s.sip.expect("sip address");
    let admin = s.login("admin", "admin").await;
    let agent = s.login("agent1", "agent").await;
    agent.set_state("available").await;
    let mut phone = spawn_baresip(&phone_dir.0, sip, "agent1");
    // Registered once the registrar counts one binding.
    let mut registered = false;
    for _ in 0..100 {
        if s.metrics()
            .await
            .contains("switchboard_sip_registrations 1")
        {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(registered, "baresip did not register as agent1");
    sipp(
        sip,
        "caller_baresip.xml",
        "127.0.0.1",
        &["-s", "1001", "-m", "1", "-d", "500"],
        &work.0,
    );
    let _ = phone.kill();
    let _ = phone.wait();
    let list = admin
        .get("/api/v1/interactions?channel=voice")
        .await
        .expect(200);
    let id = list[0]["id"].as_str().expect("id");
    let it = admin.wait_for(id, |v| v["state"] != "connected").await;
    let accepted = &events_of(&it, "interaction.accepted")[0];
    assert_eq!(accepted["data"]["agent_id"], agent.agent_id());
    assert_eq!(
        events_of(&it, "interaction.call_ended")[0]["data"]["by"],
        "caller"
    );
}
