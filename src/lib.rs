//! The `veil` command-line tool's library: data loading, file formats and the commands.

pub mod cli;
pub mod commands;
pub mod data;
pub mod error;
pub mod files;
pub mod keyio;
pub mod memory;
pub mod progress;
