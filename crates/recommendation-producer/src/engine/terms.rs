//! Recommendation terms: their windows, how much data each needs, and how much it has.

use super::data::{Interval, Series};
use super::notify::code;
use super::stats::round;

/// The interval length of the data (the measurement duration), seconds.
pub const STEP_SECS: i64 = 15 * 60;

/// A term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Term {
    /// The last day.
    Short,
    /// The last week.
    Medium,
    /// The last 15 days.
    Long,
}

impl Term {
    /// All three, in output order.
    pub const ALL: [Term; 3] = [Term::Short, Term::Medium, Term::Long];

    /// Length in days.
    pub fn days(self) -> i64 {
        match self {
            Term::Short => 1,
            Term::Medium => 7,
            Term::Long => 15,
        }
    }

    /// Length in hours (the cap of `duration_in_hours`).
    pub fn hours(self) -> f64 {
        (self.days() * 24) as f64
    }

    /// Data points the term needs at the 15-minute step (30 min, 2 days, 8 days of data).
    pub fn min_points(self) -> usize {
        match self {
            Term::Short => 2,
            Term::Medium => 192,
            Term::Long => 768,
        }
    }

    /// Box-plot buckets and their width, seconds.
    pub fn buckets(self) -> (i64, i64) {
        match self {
            Term::Short => (4, 6 * 3600),
            Term::Medium => (7, 86_400),
            Term::Long => (15, 86_400),
        }
    }

    /// The timestamp-level code announcing the term.
    pub fn available_code(self) -> u32 {
        match self {
            Term::Short => code::SHORT_TERM,
            Term::Medium => code::MEDIUM_TERM,
            Term::Long => code::LONG_TERM,
        }
    }

    /// First second of the window ending at `end`.
    pub fn start(self, end: i64) -> i64 {
        end - self.days() * 86_400
    }

    /// The intervals in `[start, end]`.
    pub fn window(self, series: &Series, end: i64) -> Vec<&Interval> {
        series
            .range(self.start(end)..=end)
            .map(|(_, i)| i)
            .collect()
    }

    /// Whether the term has its minimum data: walking back from `end` in fixed 15-minute
    /// steps inside the window, the steps with a data point within ±30 s are counted. (The
    /// reference lets the step drift by each match's offset; this steps evenly.)
    pub fn has_enough_data(self, series: &Series, end: i64) -> bool {
        self.steps_with_data(series, end) >= self.min_points()
    }

    /// How many of the window's 15-minute steps back from `end` have a point within ±30 s.
    fn steps_with_data(self, series: &Series, end: i64) -> usize {
        let start = self.start(end);
        // The points from the newest step's window down, walked once beside the steps.
        let mut points = series.range(..=end + 30).rev().map(|(t, _)| *t).peekable();
        let mut cursor = end;
        let mut found = 0;
        while cursor > start {
            while points.next_if(|&t| t > cursor + 30).is_some() {}
            if points.peek().is_some_and(|&t| t >= cursor - 30) {
                found += 1;
            }
            cursor -= STEP_SECS;
        }
        found
    }

    /// Points expected in the window at the 15-minute step.
    pub fn expected_points(self) -> usize {
        (self.days() * 86_400 / STEP_SECS) as usize
    }

    /// Hours of data present in the window, capped at the term's length, 2 decimals. (The
    /// reference always reports the cap.)
    pub fn duration_in_hours(self, points: usize) -> f64 {
        let hours = (points as i64 * STEP_SECS) as f64 / 3600.0;
        round(hours.min(self.hours()), 2)
    }

    /// Data points present ÷ points expected in the window, at most 1, 4 decimals. (The
    /// reference always reports 0.)
    pub fn confidence(self, points: usize) -> f64 {
        round((points as f64 / self.expected_points() as f64).min(1.0), 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: i64, end: i64) -> Series {
        (0..points)
            .map(|k| (end - k * STEP_SECS, Interval::default()))
            .collect()
    }

    #[test]
    fn minimum_data_per_term() {
        let end = 1_700_000_000;
        assert!(!Term::Short.has_enough_data(&series(1, end), end));
        assert!(Term::Short.has_enough_data(&series(2, end), end));
        assert!(!Term::Medium.has_enough_data(&series(191, end), end));
        assert!(Term::Medium.has_enough_data(&series(192, end), end));
        assert!(Term::Long.has_enough_data(&series(768, end), end));
        // Points 20 s off the grid still count; 40 s off do not.
        let shifted: Series = series(2, end)
            .into_keys()
            .map(|t| (t - 20, Interval::default()))
            .collect();
        assert!(Term::Short.has_enough_data(&shifted, end));
        let far: Series = series(2, end)
            .into_keys()
            .map(|t| (t - 40, Interval::default()))
            .collect();
        assert!(!Term::Short.has_enough_data(&far, end));
    }

    #[test]
    fn steps_with_data_counts_each_step_once_whatever_the_points() {
        let end = 1_700_000_000;
        // Each step looked up on its own (the form this replaced).
        let by_lookup = |term: Term, series: &Series| {
            let mut cursor = end;
            let mut found = 0;
            while cursor > term.start(end) {
                found += usize::from(series.range(cursor - 30..=cursor + 30).next().is_some());
                cursor -= STEP_SECS;
            }
            found
        };
        // Irregular points around the window's edges and the steps' ±30 s, several per step,
        // gaps: a small linear congruential sequence of offsets.
        let mut x: i64 = 12345;
        let mut series = Series::new();
        for _ in 0..3000 {
            x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
            let t = end + 60 - x % (16 * 86_400);
            series.insert(t, Interval::default());
        }
        for edge in [end + 30, end + 31, end - 30, end - 31, end - 900 + 30] {
            series.insert(edge, Interval::default());
        }
        for term in [Term::Short, Term::Medium, Term::Long] {
            assert_eq!(term.steps_with_data(&series, end), by_lookup(term, &series));
        }
        assert!(Term::Short.steps_with_data(&series, end) > 0);
        let sparse: Series = series.into_iter().step_by(7).collect();
        for term in [Term::Short, Term::Medium, Term::Long] {
            assert_eq!(term.steps_with_data(&sparse, end), by_lookup(term, &sparse));
        }
    }

    #[test]
    fn duration_and_confidence_measure_the_data() {
        assert_eq!(Term::Short.duration_in_hours(48), 12.0);
        assert_eq!(Term::Short.duration_in_hours(500), 24.0);
        assert_eq!(Term::Short.confidence(48), 0.5);
        assert_eq!(Term::Long.expected_points(), 1440);
        let end = 1_700_000_000;
        assert_eq!(
            Term::Short.window(&series(200, end), end).len(),
            97,
            "both ends included"
        );
    }
}
