//! One module per user command.

pub mod dlq;
pub mod extract;
pub mod get;
pub mod progress;
pub mod status;
pub mod submit;
