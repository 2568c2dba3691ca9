//! Which months changed since a point in the feeds: what `GET /api/v1/summary/stream` pushes,
//! and how a client resumes it. Pure.
//!
//! The index notes, for every month, the last offset of each `summary-stats` partition that
//! changed it, and for every year the same for `base-costs` (a base cost changes every month of
//! its year). A [`Cursor`] is the next offset per partition of both topics; "changed since a
//! cursor" is then exact: a change at offset `o` of partition `p` came after the cursor when
//! `o >= cursor[p]`. Memory grows with months × partitions, never with records.

use std::collections::{BTreeMap, BTreeSet};

/// Next offset per partition of one topic.
pub type Offsets = BTreeMap<i32, i64>;

/// Where a record was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// How far the index has read both topics: an SSE event id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// `summary-stats` (the served colour's topic).
    pub summary: Offsets,
    /// `base-costs`.
    pub costs: Offsets,
}

impl Cursor {
    /// The event id: `<summary topic>@<p>:<next>,…;<p>:<next>,…` (the base costs after `;`).
    /// Kafka topic names cannot hold `@`, `:`, `,` or `;`.
    pub fn id(&self, topic: &str) -> String {
        let list = |o: &Offsets| {
            o.iter()
                .map(|(p, n)| format!("{p}:{n}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!("{topic}@{};{}", list(&self.summary), list(&self.costs))
    }

    /// Reads an event id back: the topic and the cursor; `None` for anything malformed.
    pub fn parse(id: &str) -> Option<(&str, Cursor)> {
        let (topic, rest) = id.split_once('@')?;
        let (summary, costs) = rest.split_once(';')?;
        let list = |s: &str| -> Option<Offsets> {
            if s.is_empty() {
                return Some(Offsets::new());
            }
            s.split(',')
                .map(|pair| {
                    let (p, n) = pair.split_once(':')?;
                    let (p, n) = (p.parse::<i32>().ok()?, n.parse::<i64>().ok()?);
                    (p >= 0 && n >= 0).then_some((p, n))
                })
                .collect()
        };
        (!topic.is_empty()).then_some(())?;
        Some((
            topic,
            Cursor {
                summary: list(summary)?,
                costs: list(costs)?,
            },
        ))
    }
}

/// The change log of an index.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    cursor: Cursor,
    months: BTreeMap<(i32, u32), Offsets>,
    years: BTreeMap<i32, Offsets>,
    epoch: u64,
}

/// What changed since a cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Since {
    /// Months whose summary rows changed.
    pub months: BTreeSet<(i32, u32)>,
    /// Years whose base cost changed (every month of the year shows it).
    pub years: BTreeSet<i32>,
}

fn note(offsets: &mut Offsets, next: &mut Offsets, at: At) {
    offsets.insert(at.partition, at.offset);
    let n = next.entry(at.partition).or_insert(0);
    *n = (*n).max(at.offset + 1);
}

fn after(touched: &Offsets, from: &Offsets) -> bool {
    touched
        .iter()
        .any(|(p, o)| *o >= from.get(p).copied().unwrap_or(0))
}

impl Changes {
    /// A summary record at `at` changed `month`.
    pub fn month(&mut self, month: (i32, u32), at: At) {
        note(
            self.months.entry(month).or_default(),
            &mut self.cursor.summary,
            at,
        );
    }

    /// A base-cost record at `at` changed `year`.
    pub fn year(&mut self, year: i32, at: At) {
        note(
            self.years.entry(year).or_default(),
            &mut self.cursor.costs,
            at,
        );
    }

    /// How far both topics were read.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Bumped by every switch of summary source: a stream that saw another epoch starts over.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// What changed after `from`.
    pub fn since(&self, from: &Cursor) -> Since {
        Since {
            months: self
                .months
                .iter()
                .filter(|(_, t)| after(t, &from.summary))
                .map(|(m, _)| *m)
                .collect(),
            years: self
                .years
                .iter()
                .filter(|(_, t)| after(t, &from.costs))
                .map(|(y, _)| *y)
                .collect(),
        }
    }

    /// Takes `other`'s summary log (a switch of source; the base costs stay).
    pub fn replace_summaries(&mut self, other: &Changes) {
        self.months = other.months.clone();
        self.cursor.summary = other.cursor.summary.clone();
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64) -> At {
        At { partition, offset }
    }

    #[test]
    fn ids_round_trip_and_malformed_ones_are_none() {
        let mut c = Changes::default();
        c.month((2020, 1), at(0, 11));
        c.month((2020, 2), at(3, 4));
        c.year(2020, at(0, 2));
        let id = c.cursor().id("summary-stats-blue");
        assert_eq!(id, "summary-stats-blue@0:12,3:5;0:3");
        assert_eq!(
            Cursor::parse(&id),
            Some(("summary-stats-blue", c.cursor().clone()))
        );
        assert_eq!(
            Cursor::parse("t@;"),
            Some(("t", Cursor::default())),
            "nothing read yet"
        );
        for bad in [
            "", "t", "@0:1;", "t@0:1", "t@0:x;", "t@0:1,;", "t@-1:2;", "t@0:-2;", "t@0;",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn since_a_cursor_exactly_what_came_after_it() {
        let mut c = Changes::default();
        c.month((2020, 1), at(0, 0));
        c.month((2020, 2), at(1, 0));
        let before = c.cursor().clone();
        assert_eq!(c.since(&before), Since::default(), "nothing after now");
        c.month((2020, 2), at(1, 1));
        c.month((2020, 3), at(0, 1));
        c.year(2021, at(0, 0));
        let since = c.since(&before);
        assert_eq!(
            since.months.into_iter().collect::<Vec<_>>(),
            vec![(2020, 2), (2020, 3)]
        );
        assert_eq!(since.years.into_iter().collect::<Vec<_>>(), vec![2021]);
        // From nothing: everything.
        assert_eq!(c.since(&Cursor::default()).months.len(), 3);
        // A partition the cursor never saw counts from 0.
        c.month((2019, 5), at(7, 0));
        assert!(c.since(&before).months.contains(&(2019, 5)));
    }

    #[test]
    fn a_source_switch_takes_the_new_log_and_a_new_epoch() {
        let mut served = Changes::default();
        served.month((2020, 1), at(0, 50));
        served.year(2020, at(0, 1));
        let mut candidate = Changes::default();
        candidate.month((2020, 1), at(0, 3));
        served.replace_summaries(&candidate);
        assert_eq!(served.epoch(), 1);
        assert_eq!(served.cursor().summary, Offsets::from([(0, 4)]));
        assert_eq!(served.cursor().costs, Offsets::from([(0, 2)]));
    }
}
