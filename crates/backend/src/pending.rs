//! The identity rule that makes `dlq-replay` and `reprocess` compose: a record *is* its source
//! partition and offset. A dead letter carries that identity (for a replayed copy, its
//! origin's), and a replayed copy counts only while its origin is dead-lettered and not yet
//! counted: the partition's [`Pending`] set, committed with the partition's summaries and
//! restored with them. So whichever way `dlq-replay` and `reprocess` are combined, each raw
//! record counts once:
//!
//! - replay after a fix: the copy's origin is pending, it counts, the origin leaves the set;
//! - reprocess after a replay: the origin itself now counts, so its copy (origin not pending)
//!   is skipped;
//! - reprocess before a replay: the origin is dead-lettered again (pending again), the first
//!   copy replayed counts and any other copy of it is skipped.

use std::collections::BTreeMap;

/// What the backend does with one input record, given its identity and the pending set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// An original record: aggregate it (a failure dead-letters it and makes it pending).
    Original,
    /// A replayed copy whose origin is pending: aggregate it (success clears the origin).
    Replay(i64),
    /// A replayed copy whose origin was already counted, or never dead-lettered here.
    Skip(i64),
}

/// Decides how the record at `offset` of `partition` counts. `origin` is the identity a
/// replayed copy carries (`None` for an original record). A copy whose origin is another
/// partition (the input's partition count changed between the dead-lettering and the replay)
/// cannot be checked here and counts as an original.
pub fn admit(partition: i32, origin: Option<(i32, i64)>, pending: &Pending) -> Admission {
    match origin {
        Some((p, o)) if p == partition => {
            if pending.contains(o) {
                Admission::Replay(o)
            } else {
                Admission::Skip(o)
            }
        }
        _ => Admission::Original,
    }
}

/// The offsets of one partition's records that were dead-lettered and not yet counted through
/// a replay, kept as runs (a flood of bad records is one run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Run start → end (exclusive).
    runs: BTreeMap<i64, i64>,
    offsets: u64,
}

impl Pending {
    /// Whether `offset` is pending.
    pub fn contains(&self, offset: i64) -> bool {
        self.runs
            .range(..=offset)
            .next_back()
            .is_some_and(|(_, &end)| offset < end)
    }

    /// Adds `offset` (no-op when present).
    pub fn insert(&mut self, offset: i64) {
        if self.contains(offset) {
            return;
        }
        let before = self
            .runs
            .range(..offset)
            .next_back()
            .filter(|&(_, &end)| end == offset)
            .map(|(&start, _)| start);
        let after = self.runs.remove(&(offset + 1));
        let end = after.unwrap_or(offset + 1);
        let start = before.unwrap_or(offset);
        self.runs.insert(start, end);
        self.offsets += 1;
    }

    /// Removes `offset`; whether it was pending.
    pub fn remove(&mut self, offset: i64) -> bool {
        let Some((&start, &end)) = self.runs.range(..=offset).next_back() else {
            return false;
        };
        if offset >= end {
            return false;
        }
        self.runs.remove(&start);
        if start < offset {
            self.runs.insert(start, offset);
        }
        if offset + 1 < end {
            self.runs.insert(offset + 1, end);
        }
        self.offsets -= 1;
        true
    }

    /// Pending offsets.
    pub fn len(&self) -> u64 {
        self.offsets
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.offsets == 0
    }

    /// Separate runs (what the encoding's size follows).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Compact bytes: per run, the gap from the previous run's end and the run's length, as
    /// LEB128 varints.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.runs.len() * 4);
        let mut previous_end = 0i64;
        for (&start, &end) in &self.runs {
            varint(&mut out, (start - previous_end) as u64);
            varint(&mut out, (end - start) as u64);
            previous_end = end;
        }
        out
    }

    /// The inverse of [`encode`](Pending::encode).
    pub fn decode(bytes: &[u8]) -> Result<Pending, String> {
        let mut pending = Pending::default();
        let mut rest = bytes;
        let mut previous_end = 0i64;
        while !rest.is_empty() {
            let gap = read_varint(&mut rest)?;
            let len = read_varint(&mut rest)?;
            let start = previous_end
                .checked_add(i64::try_from(gap).map_err(|_| "gap out of range")?)
                .ok_or("offset out of range")?;
            let end = start
                .checked_add(i64::try_from(len).map_err(|_| "length out of range")?)
                .ok_or("offset out of range")?;
            if len == 0 || (gap == 0 && previous_end > 0) {
                return Err("runs must be non-empty and separate".into());
            }
            pending.runs.insert(start, end);
            pending.offsets += len;
            previous_end = end;
        }
        Ok(pending)
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(rest: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, tail) = rest.split_first().ok_or("truncated varint")?;
        *rest = tail;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(offsets: &[i64]) -> Pending {
        let mut p = Pending::default();
        for &o in offsets {
            p.insert(o);
        }
        p
    }

    #[test]
    fn runs_merge_split_and_count() {
        let mut p = set(&[5, 7, 6, 10, 4]);
        assert_eq!(p.runs(), 2, "{p:?}");
        assert_eq!(p.len(), 5);
        for o in [4, 5, 6, 7, 10] {
            assert!(p.contains(o), "{o}");
        }
        for o in [3, 8, 9, 11] {
            assert!(!p.contains(o), "{o}");
        }
        assert!(p.remove(6));
        assert!(!p.remove(6));
        assert!(!p.remove(9));
        assert_eq!(p.runs(), 3);
        assert_eq!(p.len(), 4);
        p.insert(6);
        assert_eq!(p, set(&[4, 5, 6, 7, 10]));
        p.insert(6);
        assert_eq!(p.len(), 5, "inserting twice counts once");
    }

    #[test]
    fn encoding_round_trips_and_stays_small() {
        for offsets in [
            vec![],
            vec![0],
            vec![0, 1, 2, 1_000_000_000_000],
            (0..10_000).collect(),
            (0..1000).map(|i| i * 3).collect(),
        ] {
            let p = set(&offsets);
            let bytes = p.encode();
            assert_eq!(Pending::decode(&bytes).unwrap(), p, "{offsets:?}");
        }
        // A flood of 10,000 consecutive bad records is one run: two bytes and a varint.
        assert!(set(&(0..10_000).collect::<Vec<_>>()).encode().len() <= 4);
        for bad in [&[0x80][..], &[1][..], &[0, 0][..], &[0xff; 11][..]] {
            assert!(Pending::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_combination_of_replay_and_reprocess_counts_once() {
        // Partition 0; the record at offset 3 fails until its schema is registered.
        let p = 0;
        let mut pending = Pending::default();
        let mut counted = 0;
        // First pass: dead-lettered, pending.
        assert_eq!(admit(p, None, &pending), Admission::Original);
        pending.insert(3);
        // Replay after the fix: the copy (offset 9, origin 3) counts, the origin is cleared.
        assert_eq!(admit(p, Some((0, 3)), &pending), Admission::Replay(3));
        assert!(pending.remove(3));
        counted += 1;
        // Replaying the same letter again (a second copy): skipped.
        assert_eq!(admit(p, Some((0, 3)), &pending), Admission::Skip(3));
        assert_eq!(counted, 1);

        // Reprocess from 0 (nothing restored): the original now decodes and counts...
        let pending = Pending::default();
        assert_eq!(admit(p, None, &pending), Admission::Original);
        counted = 1;
        // ...and its copy is skipped.
        assert_eq!(admit(p, Some((0, 3)), &pending), Admission::Skip(3));
        assert_eq!(counted, 1);

        // Reprocess before the fix: dead-lettered again; the first copy counts, a later one not.
        let mut pending = Pending::default();
        pending.insert(3);
        assert_eq!(admit(p, Some((0, 3)), &pending), Admission::Replay(3));
        pending.remove(3);
        assert_eq!(admit(p, Some((0, 3)), &pending), Admission::Skip(3));

        // A copy whose origin is another partition cannot be checked: it counts.
        assert_eq!(admit(1, Some((0, 3)), &pending), Admission::Original);
    }
}
