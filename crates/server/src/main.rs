//! `switchboard`: the contact-center server and its tools.
//!
//! - `switchboard serve`: runs everything (HTTP API, routing engines, store).
//! - `switchboard simulate`: replays synthetic traffic through the real router in simulated time.
//! - `switchboard admin create`: creates a tenant's first account.
//!
//! This crate is the only async runtime of the workspace: it moves requests and events between
//! the world and the sans-IO engines, and owns the one clock (`clock.rs`).

mod api;
mod attachments;
mod auth;
mod bench;
mod bench_email;
mod bench_rtp;
mod bench_sip;
mod bench_webhooks;
mod bus;
mod chat;
mod chat_flow;
mod clock;
mod config;
mod demo;
mod email;
mod engine;
mod error;
mod group_commit;
mod messaging;
mod recordings;
mod shapes;
mod simulate;
mod state;
mod transcript;
mod voice;
mod web;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Omnichannel contact center")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (defaults: HTTP on 127.0.0.1:8080, SQLite under ./data, demo tenant).
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides SWITCHBOARD_DATA).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Start empty: no demo tenant (create the first admin with `switchboard admin create`).
        #[arg(long)]
        no_demo: bool,
    },
    /// Simulate a queue in virtual time through the real router and compare with Erlang C/A.
    Simulate(simulate::SimArgs),
    /// Load benchmarks against a running server.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Account administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user (and its tenant when new), e.g. the first admin of an empty system.
    Create {
        /// Tenant slug (created if missing).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Login name.
        #[arg(long)]
        username: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "SWITCHBOARD_ADMIN_PASSWORD")]
        password: String,
        /// Role: admin, supervisor or agent.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Data directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The server's TOML configuration file (for its data directory and database URL).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => simulate::run(args),
        Command::Bench { command } => bench::run(command),
        Command::Serve {
            config,
            data,
            no_demo,
        } => {
            let Some(mut cfg) = load_config(config.as_deref()) else {
                return ExitCode::from(2);
            };
            if let Some(d) = data {
                cfg.data_dir = d;
            }
            if no_demo {
                cfg.demo = false;
            }
            runtime(|| serve(cfg))
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    tenant,
                    username,
                    password,
                    role,
                    data,
                    config,
                },
        } => {
            let Some(mut cfg) = load_config(config.as_deref()) else {
                return ExitCode::from(2);
            };
            if let Some(d) = data {
                cfg.data_dir = d;
            }
            let Ok(role) = role.parse() else {
                eprintln!("switchboard: --role: expected admin, supervisor or agent");
                return ExitCode::from(2);
            };
            if let Err(e) = shapes::check_username(&username) {
                eprintln!("switchboard: --username: {}", e.problem);
                return ExitCode::from(2);
            }
            if password.chars().count() < 8 {
                eprintln!("switchboard: --password: at least 8 characters");
                return ExitCode::from(2);
            }
            runtime(|| async move {
                let store = open_store(&cfg).await?;
                let clock = clock::Clock::new();
                demo::create_tenant_admin(&store, &clock, &tenant, &username, &password, role)
                    .await?;
                store.close().await;
                println!(
                    "created {} {username:?} in tenant {tenant:?}",
                    role.as_str()
                );
                Ok(())
            })
        }
    }
}

/// Loads the configuration from the file and the environment; prints the problem and gives
/// `None` when it is bad (the caller exits with code 2).
fn load_config(file: Option<&std::path::Path>) -> Option<config::Config> {
    let env = |k: &str| std::env::var(k).ok();
    match config::Config::load(file, &env) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("switchboard: {e}");
            None
        }
    }
}

fn runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn open_store(cfg: &config::Config) -> anyhow::Result<switchboard_store::Store> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            cfg.data_dir.display()
        )
    })?;
    Ok(switchboard_store::Store::open_url(&cfg.database_url()).await?)
}

async fn serve(cfg: config::Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
        ])?
        .install_recorder()?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            cfg.data_dir.display()
        )
    })?;
    // One server per data directory: two would route the same interactions independently.
    let lock_path = cfg.data_dir.join("switchboard.lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "another switchboard is already serving {} (lock {} is held)",
            cfg.data_dir.display(),
            lock_path.display()
        );
    }
    let listener = tokio::net::TcpListener::bind(cfg.http)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (SWITCHBOARD_HTTP): {e}", cfg.http))?;
    let store = open_store(&cfg).await?;
    let clock = clock::Clock::new();
    if cfg.demo && store.tenants().await?.is_empty() {
        demo::seed(&store, &clock).await?;
    }
    if cfg.demo {
        demo::ensure_recording_policy(&store, &clock).await?;
    }
    let decoy = auth::hash_password(auth::new_token().map_err(|e| anyhow::anyhow!(e.message))?)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let state = state::AppState::new(store.clone(), clock, cfg.clone(), metrics, decoy);
    state.start_engines().await?;
    let outbox = messaging::outbox::start(state.clone());
    transcript::start(state.clone());
    let recording_sweep =
        recordings::start_sweeper(state.recordings.clone(), cfg.recording_sweep_interval);
    let (smtp_addr, smtp) = email::start(state.clone(), cfg.smtp).await?;
    let imap = email::imap::start(&state);
    let sla = email::sla::start(state.clone());
    let voice = voice::start(state.clone(), cfg.sip).await?;
    let _ = state.sip_accounts.set(voice.reloader());
    let _ = state.call_recorder.set(voice.recorder());
    voice::record_calls::start(state.clone(), voice.recorder());
    let addr = listener.local_addr()?;
    let demo = cfg.demo && store.tenant_by_slug("demo").await?.is_some();
    print_banner(addr, smtp_addr, voice.local_addr(), &cfg, demo);
    let app = api::app(state.clone());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("shutting down: draining engines");
    voice.stop();
    smtp.abort();
    imap.iter().for_each(tokio::task::JoinHandle::abort);
    sla.abort();
    state.stop_engines().await;
    outbox.abort();
    recording_sweep.abort();
    store.close().await;
    drop(lock);
    println!("switchboard stopped");
    Ok(())
}

fn print_banner(
    addr: SocketAddr,
    smtp: SocketAddr,
    sip: SocketAddr,
    cfg: &config::Config,
    demo: bool,
) {
    println!("switchboard {} started", env!("CARGO_PKG_VERSION"));
    println!("http={addr}");
    // Before `sip=`: the test harness reads up to the `sip=` line.
    println!("smtp={smtp}");
    println!("sip={sip}");
    println!("  agent        http://{addr}/agent");
    println!("  supervisor   http://{addr}/supervisor");
    println!("  demo chat    http://{addr}/demo/chat   (widget: http://{addr}/widget.js)");
    println!("  API          http://{addr}/api/v1   (OpenAPI: http://{addr}/openapi.json)");
    println!("  events       ws://{addr}/api/v1/events?token=TOKEN");
    println!("  metrics      http://{addr}/metrics");
    println!("  data         {}", cfg.database_url());
    match &cfg.email.relay {
        Some((h, p)) => println!("  mail relay   {h}:{p}"),
        None => println!(
            "  mail relay   none (SWITCHBOARD_SMTP_RELAY unset: replies stay in the outbox)"
        ),
    }
    if demo {
        println!("demo tenant logins as first created (POST /api/v1/auth/login):");
        for (u, p, role) in demo::LOGINS {
            println!("  {u:<11} / {p:<11} {role}");
        }
        println!(
            "demo phones register at {sip} (UDP/TCP) as agent1..agent3 / agent, realm {}",
            demo::SIP_REALM
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
