//! One module per user command.

pub mod extract;
pub mod get;
