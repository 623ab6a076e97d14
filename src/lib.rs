//! The `agentkey` server process: configuration, start-up, the HTTP surface and the CLI.
//! Behaviour lives in `app::server::service`; this crate wires it to the outside world.

pub mod cli;
pub mod config;
pub mod http;
pub mod startup;
pub mod telemetry;
pub mod workers;
