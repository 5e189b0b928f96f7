//! The `veil` command-line tool's library: data loading, file formats and the commands.

pub mod cli;
pub mod commands;
pub mod data;
