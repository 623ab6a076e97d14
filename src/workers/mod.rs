//! Background work of the server process.

pub mod notify;
