//! Progress of a long read of history (`top --since`): hours done and total, events, waits for
//! the request budget, and an ETA. On a terminal an [`indicatif`] bar redraws in place; elsewhere
//! (a pipe, a CI log) plain lines, one per tenth of the hours, one per wait, and one at the end.
//!
//! Progress goes to stderr, so the ranking on stdout stays clean for a pipe.

use std::fmt;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::decode::UnixMillis;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing (the exporter's own initial lookback logs instead).
    Off,
    /// Plain lines on stderr.
    Lines,
    /// A bar on stderr, redrawn in place (stderr is a terminal).
    Bar,
}

impl ProgressMode {
    /// A bar when stderr is a terminal, lines otherwise.
    pub fn for_stderr() -> Self {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

/// Where a read of history stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub hours_done: u64,
    pub hours_total: u64,
    pub events: u64,
    pub budget_waits: u64,
}

impl Counts {
    /// Time left at the pace so far, once an hour is done and while some are left.
    pub fn eta(&self, elapsed: Duration) -> Option<Duration> {
        if self.hours_done == 0 || self.hours_done >= self.hours_total {
            return None;
        }
        let left = self.hours_total - self.hours_done;
        Some(elapsed.mul_f64(left as f64 / self.hours_done as f64))
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} hours read, {} events, {} waits for the request budget",
            self.hours_done, self.hours_total, self.events, self.budget_waits
        )
    }
}

/// Shows the progress of one read of history.
pub struct Progress {
    mode: ProgressMode,
    counts: Counts,
    started: Instant,
    bar: Option<ProgressBar>,
    /// Tenths of the hours done at the last line.
    last_tenth: u64,
}

impl Progress {
    pub fn new(mode: ProgressMode, hours_total: u64) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(hours_total),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} hours, {msg}, ETA {eta} (elapsed {elapsed})",
            ) {
                bar.set_style(style);
            }
            bar.set_message("0 events, 0 waits for the budget");
            bar
        });
        Progress {
            mode,
            counts: Counts {
                hours_done: 0,
                hours_total,
                events: 0,
                budget_waits: 0,
            },
            started: Instant::now(),
            bar,
            last_tenth: 0,
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// One more hour read (or given up); `events` is the total read so far.
    pub fn hour_done(&mut self, events: u64) {
        self.counts.hours_done += 1;
        self.counts.events = events;
        match self.mode {
            ProgressMode::Off => {}
            ProgressMode::Bar => self.redraw(),
            ProgressMode::Lines => {
                let tenth = self.counts.hours_done * 10 / self.counts.hours_total.max(1);
                if tenth > self.last_tenth || self.counts.hours_done == self.counts.hours_total {
                    self.last_tenth = tenth;
                    self.line(None);
                }
            }
        }
    }

    /// The read waits for the request budget (or a 429) until `until`.
    pub fn waiting(&mut self, until: UnixMillis) {
        self.counts.budget_waits += 1;
        match self.mode {
            ProgressMode::Off => {}
            ProgressMode::Bar => self.redraw(),
            ProgressMode::Lines => self.line(Some(until)),
        }
    }

    /// Ends the bar, leaving its last state on screen.
    pub fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }

    fn redraw(&self) {
        if let Some(bar) = &self.bar {
            // The message first: setting the position redraws.
            bar.set_message(format!(
                "{} events, {} waits for the budget",
                self.counts.events, self.counts.budget_waits
            ));
            bar.set_position(self.counts.hours_done);
        }
    }

    fn line(&self, waiting_until: Option<UnixMillis>) {
        eprintln!("{}", self.line_text(waiting_until));
    }

    /// The plain line: the counts, then the wait or the ETA.
    pub fn line_text(&self, waiting_until: Option<UnixMillis>) -> String {
        let mut line = format!("progress: {}", self.counts);
        if let Some(until) = waiting_until {
            line.push_str(&format!(
                "; waiting for the request budget until {}",
                until.to_api_string() + "Z"
            ));
        } else if let Some(eta) = self.counts.eta(self.started.elapsed()) {
            line.push_str(&format!("; ETA {}s", eta.as_secs()));
        }
        line.push('.');
        line
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_the_pace_so_far_times_the_hours_left() {
        let c = Counts {
            hours_done: 3,
            hours_total: 12,
            events: 10,
            budget_waits: 1,
        };
        // 3 hours in 6 s: 9 left take 18 s.
        assert_eq!(c.eta(Duration::from_secs(6)), Some(Duration::from_secs(18)));
        assert_eq!(
            Counts { hours_done: 0, ..c }.eta(Duration::from_secs(6)),
            None
        );
        assert_eq!(
            Counts {
                hours_done: 12,
                ..c
            }
            .eta(Duration::from_secs(6)),
            None
        );
        assert_eq!(
            c.to_string(),
            "3 of 12 hours read, 10 events, 1 waits for the request budget"
        );
    }

    #[test]
    fn a_wait_for_the_budget_is_counted_and_says_until_when() {
        let mut p = Progress::new(ProgressMode::Off, 4);
        p.hour_done(25);
        p.waiting(UnixMillis(3_600_000));
        assert_eq!(
            p.counts(),
            Counts {
                hours_done: 1,
                hours_total: 4,
                events: 25,
                budget_waits: 1
            }
        );
        assert_eq!(
            p.line_text(Some(UnixMillis(3_600_000))),
            "progress: 1 of 4 hours read, 25 events, 1 waits for the request budget; waiting for \
             the request budget until 1970-01-01T01:00:00Z."
        );
    }
}
