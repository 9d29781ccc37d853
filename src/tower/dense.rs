//! The user tower's dense input: what the device knows of the user and the request besides
//! history and searches, computed by the one function the trainer and the device both call.

use crate::calendar;
use crate::features::Gender;

/// Width of the user tower's dense input ([`two_tower_dense`]).
pub const TWO_TOWER_DENSE: usize = 7;

/// The name of the dense input layout [`two_tower_dense`] produces, stored in the bundle's
/// `TWRT` section (`dense_features`) so a runtime can refuse a model trained on another layout.
pub const TWO_TOWER_DENSE_FEATURES: &str = "edgerec-dense/2: age/100, gender=f, gender=m, gender=other, sin(whole hour), cos(whole hour), weekend";

/// `(sin, cos)` of `2π h / 24` for each whole hour `h`, rounded to `f32` (exact at the quarters).
const HOUR_CIRCLE: [(f32, f32); 24] = [
    (0.0, 1.0),
    (0.25881904, 0.9659258),
    (0.5, 0.8660254),
    (0.70710677, 0.70710677),
    (0.8660254, 0.5),
    (0.9659258, 0.25881904),
    (1.0, 0.0),
    (0.9659258, -0.25881904),
    (0.8660254, -0.5),
    (0.70710677, -0.70710677),
    (0.5, -0.8660254),
    (0.25881904, -0.9659258),
    (0.0, -1.0),
    (-0.25881904, -0.9659258),
    (-0.5, -0.8660254),
    (-0.70710677, -0.70710677),
    (-0.8660254, -0.5),
    (-0.9659258, -0.25881904),
    (-1.0, 0.0),
    (-0.9659258, 0.25881904),
    (-0.8660254, 0.5),
    (-0.70710677, 0.70710677),
    (-0.5, 0.8660254),
    (-0.25881904, 0.9659258),
];

/// The two-tower model's dense user and context features, in this order:
///
/// 1. `age / 100` (age in years; 0 when unknown);
/// 2. – 4. gender one-hot: female, male, anything else (another answer or not given);
/// 5. – 6. `sin` and `cos` of the local hour of `time` on the 24-hour circle
///    (`utc_offset_minutes` east of UTC; the whole hour, from a constant table so every
///    platform gets the same bits — `f32::sin` differs between native libm and wasm);
/// 7. `1` on Saturday and Sunday (local time), else `0`.
///
/// The trainer computes the same vector for each training example at the example's time, so
/// a device must pass the request's time and its own offset from UTC. Cost O(1).
///
/// ```
/// use edgerec::features::Gender;
/// use edgerec::tower::{TWO_TOWER_DENSE, two_tower_dense};
/// let d = two_tower_dense(30, Gender::Female, 0, 12 * 3600); // Thursday 1970-01-01, noon
/// assert_eq!(d.len(), TWO_TOWER_DENSE);
/// assert_eq!(&d[..4], &[0.3, 1.0, 0.0, 0.0]);
/// assert!(d[4].abs() < 1e-6 && (d[5] + 1.0).abs() < 1e-6 && d[6] == 0.0);
/// ```
pub fn two_tower_dense(age: u8, gender: Gender, utc_offset_minutes: i32, time: i64) -> Vec<f32> {
    let local = calendar::local_seconds(time, utc_offset_minutes);
    let (sin, cos) = HOUR_CIRCLE[(local.rem_euclid(86_400) / 3_600) as usize];
    let weekday = calendar::weekday(local.div_euclid(86_400));
    vec![
        f32::from(age) / 100.0,
        f32::from(gender == Gender::Female),
        f32::from(gender == Gender::Male),
        f32::from(!matches!(gender, Gender::Female | Gender::Male)),
        sin,
        cos,
        f32::from(weekday >= 5),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_features_match_the_documented_layout() {
        // 1970-01-03 was a Saturday; 18:00 local at UTC-5 is 23:00 UTC.
        let t = 2 * 86_400 + 23 * 3600;
        let d = two_tower_dense(255, Gender::Other, -300, t);
        assert_eq!(d.len(), TWO_TOWER_DENSE);
        assert_eq!(&d[..4], &[2.55, 0.0, 0.0, 1.0]);
        assert_eq!((d[4], d[5]), (-1.0, 0.0));
        assert_eq!(d[6], 1.0);
        // Every hour of the table is the circle's point, to f32 precision.
        for h in 0..24 {
            let d = two_tower_dense(30, Gender::Female, 0, h * 3600 + 1799);
            let a = (h as f64) / 24.0 * std::f64::consts::TAU;
            assert!((f64::from(d[4]) - a.sin()).abs() < 1e-7, "hour {h}");
            assert!((f64::from(d[5]) - a.cos()).abs() < 1e-7, "hour {h}");
        }
        assert_eq!(two_tower_dense(0, Gender::Male, 0, 0)[2], 1.0);
        // Not given counts as "anything else", like another answer.
        assert_eq!(
            &two_tower_dense(0, Gender::Unknown, 0, 0)[1..4],
            &[0.0, 0.0, 1.0]
        );
    }
}
