//! Default topic names, header names, subjects, and the working day and calendar that both
//! the producers and the readers of the widget topics count with.

/// Hourly production records (`raw`), keyed by SKU.
pub const RAW_DATA_IN: &str = "raw-data-in";
/// Raw records the backend could not aggregate, with their original key and bytes.
pub const RAW_DATA_IN_DLQ: &str = "raw-data-in.dlq";
/// Current monthly totals (`summary`), keyed `YYYY-MM|SKU`, compacted.
pub const SUMMARY_STATS: &str = "summary-stats";
/// The backend's per-partition state beside its summaries (the dead-lettered records not yet
/// counted through a replay), keyed `<group>|<partition>`, one partition, compacted.
pub const BACKEND_STATE: &str = "backend-state";
/// Yearly hourly base costs (`base_cost`), keyed by year, compacted.
pub const BASE_COSTS: &str = "base-costs";
/// Right-sizing recommendations, one message per experiment.
pub const RECOMMENDATIONS: &str = "recommendations-topic";
/// Experiments that failed, in the recommendations' shape.
pub const ERRORS: &str = "error-topic";
/// One summary per bulk job.
pub const JOB_SUMMARIES: &str = "summary-topic";
/// The schema registry's state.
pub const SCHEMAS: &str = "_schemas";

/// Headers Rivulet writes beside the values.
pub mod headers {
    /// On a summary: the input offset (exclusive) it reflects, in its input partition.
    pub const INPUT_OFFSET: &str = "rivulet-input-offset";
    /// On a dead letter: why it could not be aggregated.
    pub const DLQ_REASON: &str = "rivulet-dlq-reason";
    /// On a dead letter: where it came from.
    pub const SOURCE_TOPIC: &str = "rivulet-source-topic";
    /// On a dead letter: the partition of the record's identity (for a replayed copy, its
    /// origin's: a record is its first partition and offset).
    pub const SOURCE_PARTITION: &str = "rivulet-source-partition";
    /// On a dead letter: the offset of the record's identity (for a replayed copy, its origin's).
    pub const SOURCE_OFFSET: &str = "rivulet-source-offset";
    /// On a replayed copy: the partition of the original record it is a copy of.
    pub const ORIGIN_PARTITION: &str = "rivulet-origin-partition";
    /// On a replayed copy: the offset of the original record it is a copy of.
    pub const ORIGIN_OFFSET: &str = "rivulet-origin-offset";
    /// On a replayed record: the dead letter it was replayed from (`partition:offset`).
    pub const REPLAYED_FROM: &str = "rivulet-replayed-from";
}

/// The subject of a topic's values under Confluent's TopicNameStrategy.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// First working hour of a day.
pub const FIRST_HOUR: u32 = 8;
/// Last working hour of a day (inclusive): 12 working hours a day, 7 days a week.
pub const LAST_HOUR: u32 = 19;
/// Working hours per day: production records exist for these hours only, and a month's base
/// cost is the hourly base cost × these hours × the days of the month.
pub const HOURS_PER_DAY: u32 = LAST_HOUR - FIRST_HOUR + 1;

/// Whether `year` is a Gregorian leap year.
pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` of `year` (Gregorian calendar); 31 for a month outside 1..=12.
pub fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2023, 4), 30);
        assert_eq!(days_in_month(2023, 12), 31);
        assert_eq!(HOURS_PER_DAY, 12);
        assert_eq!(value_subject(RAW_DATA_IN), "raw-data-in-value");
    }
}
