//! The reference's percentile: nearest rank on the sorted values, no interpolation.

/// `sorted[round_half_up(p / 100 × (n − 1))]`; `None` for no values.
pub fn percentile(p: f64, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * (values.len() - 1) as f64 + 0.5).floor() as usize;
    // The value at `rank` of the sorted order, without sorting the rest.
    let mut values = values.to_vec();
    let rank = rank.min(values.len() - 1);
    let (_, at, _) = values.select_nth_unstable_by(rank, f64::total_cmp);
    Some(*at)
}

/// Rounds to `places` decimals, halves away from zero.
pub fn round(v: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (v * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(0.0, &v), Some(1.0));
        assert_eq!(percentile(50.0, &v), Some(3.0));
        assert_eq!(percentile(60.0, &v), Some(3.0), "0.6 × 4 = 2.4 -> rank 2");
        assert_eq!(
            percentile(62.5, &v),
            Some(4.0),
            "2.5 rounds half up -> rank 3"
        );
        assert_eq!(percentile(98.0, &v), Some(5.0));
        assert_eq!(percentile(100.0, &v), Some(5.0));
        assert_eq!(percentile(50.0, &[]), None);
        assert_eq!(round(1.23456, 2), 1.23);
    }
}
