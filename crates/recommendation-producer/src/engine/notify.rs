//! Notification codes (the reference's table) and the maps they are kept in.

use std::collections::BTreeMap;

use serde::Serialize;

/// A notification as it appears in the output: `{"type":"info","message":"...","code":111000}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// `info`, `error`, `notice`, `warning` or `critical`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Text.
    pub message: &'static str,
    /// Code.
    pub code: u32,
}

/// Notifications keyed by their code as a string, in code order.
pub type Notifications = BTreeMap<String, Notification>;

/// Every code the engine emits.
pub mod code {
    /// Recommendations are available.
    pub const AVAILABLE: u32 = 111_000;
    /// Short term available.
    pub const SHORT_TERM: u32 = 111_101;
    /// Medium term available.
    pub const MEDIUM_TERM: u32 = 111_102;
    /// Long term available.
    pub const LONG_TERM: u32 = 111_103;
    /// Cost model available.
    pub const COST: u32 = 112_101;
    /// Performance model available.
    pub const PERFORMANCE: u32 = 112_102;
    /// Not enough data.
    pub const NOT_ENOUGH_DATA: u32 = 120_001;
    /// Pods count zero.
    pub const PODS_ZERO: u32 = 221_001;
    /// CPU amount missing.
    pub const CPU_AMOUNT_MISSING: u32 = 223_001;
    /// CPU amount invalid.
    pub const CPU_AMOUNT_INVALID: u32 = 223_002;
    /// Memory amount missing.
    pub const MEMORY_AMOUNT_MISSING: u32 = 224_001;
    /// Memory amount invalid.
    pub const MEMORY_AMOUNT_INVALID: u32 = 224_002;
    /// CPU below a millicore.
    pub const CPU_IDLE: u32 = 323_001;
    /// CPU zero.
    pub const CPU_ZERO: u32 = 323_002;
    /// Optimised wrt CPU requests.
    pub const CPU_REQUESTS_OPTIMISED: u32 = 323_004;
    /// Optimised wrt CPU limits.
    pub const CPU_LIMITS_OPTIMISED: u32 = 323_005;
    /// Memory zero.
    pub const MEMORY_ZERO: u32 = 324_001;
    /// Optimised wrt memory requests.
    pub const MEMORY_REQUESTS_OPTIMISED: u32 = 324_003;
    /// Optimised wrt memory limits.
    pub const MEMORY_LIMITS_OPTIMISED: u32 = 324_004;
    /// CPU limit not set.
    pub const CPU_LIMIT_NOT_SET: u32 = 423_001;
    /// CPU request not set.
    pub const CPU_REQUEST_NOT_SET: u32 = 523_001;
    /// Memory request not set.
    pub const MEMORY_REQUEST_NOT_SET: u32 = 524_001;
    /// Memory limit not set.
    pub const MEMORY_LIMIT_NOT_SET: u32 = 524_002;
}

/// The notification of `code`. Codes outside the table are a defect and read "unknown".
pub fn notification(code: u32) -> Notification {
    let (kind, message) = match code {
        111_000 => ("info", "Recommendations Are Available"),
        111_101 => ("info", "Short Term Recommendations Available"),
        111_102 => ("info", "Medium Term Recommendations Available"),
        111_103 => ("info", "Long Term Recommendations Available"),
        112_101 => ("info", "Cost Recommendations Available"),
        112_102 => ("info", "Performance Recommendations Available"),
        120_001 => (
            "info",
            "There is not enough data available to generate a recommendation.",
        ),
        221_001 => ("error", "Number of pods cannot be zero"),
        223_001 => ("error", "Amount field is missing in the CPU Section"),
        223_002 => ("error", "Invalid Amount in CPU Section"),
        224_001 => ("error", "Amount field is missing in the Memory Section"),
        224_002 => ("error", "Invalid Amount in Memory Section"),
        323_001 => (
            "notice",
            "CPU Usage is less than a millicore, No CPU Recommendations can be generated",
        ),
        323_002 => (
            "notice",
            "CPU usage is zero, No CPU Recommendations can be generated",
        ),
        323_004 => (
            "notice",
            "Workload is optimised wrt CPU REQUESTS, no changes needed",
        ),
        323_005 => (
            "notice",
            "Workload is optimised wrt CPU LIMITS, no changes needed",
        ),
        324_001 => (
            "notice",
            "Memory Usage is zero, No Memory Recommendations can be generated",
        ),
        324_003 => (
            "notice",
            "Workload is optimised wrt MEMORY REQUESTS, no changes needed",
        ),
        324_004 => (
            "notice",
            "Workload is optimised wrt MEMORY LIMITS, no changes needed",
        ),
        423_001 => ("warning", "CPU Limit Not Set"),
        523_001 => ("critical", "CPU Request Not Set"),
        524_001 => ("critical", "Memory Request Not Set"),
        524_002 => ("critical", "Memory Limit Not Set"),
        _ => ("error", "unknown notification"),
    };
    Notification {
        kind,
        message,
        code,
    }
}

/// Adds `code` to `map`.
pub fn add(map: &mut Notifications, code: u32) {
    map.insert(code.to_string(), notification(code));
}

/// A map holding `codes`.
pub fn of(codes: &[u32]) -> Notifications {
    let mut map = Notifications::new();
    for &c in codes {
        add(&mut map, c);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_first_digit() {
        for c in [111_000, 223_001, 323_004, 423_001, 524_002] {
            let expected =
                ["", "info", "error", "notice", "warning", "critical"][(c / 100_000) as usize];
            assert_eq!(notification(c).kind, expected, "{c}");
        }
        let json = serde_json::to_string(&of(&[code::AVAILABLE])).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"111000":{"type":"info","message":"Recommendations Are Available","code":111000}}"#
        );
    }
}
