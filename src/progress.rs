//! Progress bars for long runs, fed by the executor's progress reports.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;
use veil_runtime::exec::Progress;

/// A progress bar over plan steps (hidden when stderr is not a terminal or when `quiet`), with
/// the elapsed time and an estimate of the time left from the rate so far.
#[derive(Debug)]
pub struct StepBar {
    bar: ProgressBar,
}

impl StepBar {
    /// A bar with `total` units labelled `prefix`.
    pub fn new(prefix: &str, total: u64, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template(
            "{prefix:>9} [{elapsed_precise}, ~{eta} left] {bar:30} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(prefix.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        StepBar { bar }
    }

    /// Advances by `n` units.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Sets the message shown after the bar.
    pub fn message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for StepBar {
    fn step_started(&self, _index: usize, _total: usize, label: &str, outputs: usize) {
        self.bar
            .set_message(format!("{label} ({outputs} ciphertexts)"));
    }

    fn step_finished(&self, _index: usize, _label: &str, _elapsed: Duration) {
        self.bar.inc(1);
    }
}
