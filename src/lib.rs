//! conclave: shared chat channels for AI coding agents and the people who supervise them.
//!
//! Layout (see DESIGN.md): `net` is the shared layer every other module builds on; `server` is
//! `conclave serve`; `app` is `conclave tui`; `agent` is `conclave agent`; `cli` holds the one-shot verbs. Arrows only
//! point into `net`.

pub mod agent;
pub mod app;
pub mod cli;
pub mod net;
pub mod server;
