//! Switchboard analytics: staffing mathematics and the contact-center simulator.
//!
//! Owns:
//! - [`erlang`]: Erlang B, Erlang C (probability of waiting, service level, ASA, occupancy,
//!   agents needed for a target) and Erlang A (callers who abandon), as pure `f64` functions
//!   that return [`ErlangError`] for inputs outside their range instead of panicking or NaN;
//! - [`simulate`](mod@simulate): a discrete-event simulation of one queue that routes every call through the
//!   real [`switchboard_routing::Router`] in simulated time, and reports measured service level,
//!   ASA, abandonment and occupancy next to the Erlang prediction for the same inputs.
//!
//! Does not own (yet, or ever): real-time stats and reports over the event log (they are
//! projections, DESIGN rule 4), forecasting, the `switchboard simulate` command line and its
//! progress bar and wall-clock timing (the server crate), any I/O. Nothing here reads a clock or
//! a global RNG (DESIGN rule 2): simulated time starts at zero and chance comes from the seed.
//!
//! Driving it:
//! ```no_run
//! use std::time::Duration;
//! use switchboard_analytics::{erlang, simulate};
//!
//! let traffic = erlang::Traffic::new(300.0, Duration::from_secs(240))?;
//! let agents = erlang::agents_needed(&traffic, Duration::from_secs(20), 0.8)?; // 25
//!
//! let mut params = simulate::SimParams::new(agents, 300.0, Duration::from_secs(240), 1000.0);
//! params.patience = Some(Duration::from_secs(120));
//! let report = simulate::simulate(&params, &mut |done, total| eprintln!("{done}/{total}"))?;
//! println!("{} vs {:?}", report.service_level, report.erlang_service_level);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod erlang;
pub mod simulate;

pub use erlang::ErlangError;
pub use simulate::{SimError, SimParams, SimReport, simulate};
