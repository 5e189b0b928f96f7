//! The `veil` command-line tool's library: data loading, file formats and the commands.

pub mod cli;
pub mod commands;
pub mod container;
pub mod data;
pub mod encoding;
pub mod files;
pub mod keyio;
pub mod memory;
pub mod pipeline;
pub mod progress;
