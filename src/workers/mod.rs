//! Background work of the server process.

pub mod maintenance;
pub mod notify;
