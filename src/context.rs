//! The request context: what device the user is on and what time it is where they are.
//!
//! Local calendar fields are derived with integer arithmetic only, so the device and the
//! trainer compute exactly the same values on every platform.
//!
//! ```
//! use edgerec::context::{Context, Daypart, Device};
//! // 2026-11-27 20:30 UTC is a Friday evening; in UTC+1 it is 21:30.
//! let ctx = Context::new(Device::Tv, 1_795_811_400, 60)?;
//! assert_eq!(ctx.local_hour(), 21);
//! assert_eq!(ctx.weekday(), 4); // Monday = 0
//! assert_eq!(ctx.daypart(), Daypart::Evening);
//! # Ok::<(), edgerec::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::calendar;
use crate::error::{Error, Result};

/// The kind of screen a request comes from (serialised as [`Device::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// A television app.
    Tv,
    /// A desktop or laptop browser.
    Desktop,
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
    /// Not reported.
    Unknown,
}

impl Device {
    /// Every device, in a fixed order.
    pub const ALL: [Device; 5] = [
        Device::Tv,
        Device::Desktop,
        Device::Mobile,
        Device::Tablet,
        Device::Unknown,
    ];

    /// The lowercase name used in the JS API and files.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Tv => "tv",
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Device> {
        Device::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown device {s:?} (expected tv, desktop, mobile, tablet or unknown)"
                ))
            })
    }
}

/// Coarse part of the local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daypart {
    /// 05:00–11:59.
    Morning,
    /// 12:00–16:59.
    Afternoon,
    /// 17:00–22:59.
    Evening,
    /// 23:00–04:59.
    Night,
}

/// Largest accepted distance from UTC, in minutes (real offsets span −12:00 … +14:00).
pub const MAX_UTC_OFFSET_MINUTES: i32 = 18 * 60;

/// Device and local time of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    device: Device,
    timestamp: i64,
    utc_offset_minutes: i32,
}

impl Context {
    /// A context at `timestamp` (unix seconds, UTC) for a user whose local time is UTC plus
    /// `utc_offset_minutes`. Fails if the offset is beyond ±18 hours or the time is outside
    /// [`crate::limits::MIN_TIME`]`..=`[`crate::limits::MAX_TIME`].
    pub fn new(device: Device, timestamp: i64, utc_offset_minutes: i32) -> Result<Context> {
        if !crate::limits::time_in_range(timestamp) {
            return Err(Error::InvalidArgument(crate::limits::time_error(
                "context timestamp",
                timestamp,
            )));
        }
        if utc_offset_minutes.unsigned_abs() > MAX_UTC_OFFSET_MINUTES.unsigned_abs() {
            return Err(Error::InvalidArgument(format!(
                "utcOffsetMinutes {utc_offset_minutes} is beyond ±{MAX_UTC_OFFSET_MINUTES}"
            )));
        }
        Ok(Context {
            device,
            timestamp,
            utc_offset_minutes,
        })
    }

    /// The device.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Unix seconds, UTC.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Local offset from UTC in minutes.
    pub fn utc_offset_minutes(&self) -> i32 {
        self.utc_offset_minutes
    }

    /// Local day count since 1970-01-01 (see [`crate::calendar`]).
    pub fn local_days(&self) -> i64 {
        calendar::local_days(self.timestamp, self.utc_offset_minutes)
    }

    /// Local hour of day, 0–23.
    pub fn local_hour(&self) -> u8 {
        (calendar::local_seconds(self.timestamp, self.utc_offset_minutes).rem_euclid(86_400)
            / 3_600) as u8
    }

    /// Local day of week, Monday = 0 … Sunday = 6.
    pub fn weekday(&self) -> u8 {
        calendar::weekday(self.local_days())
    }

    /// The part of the local day.
    pub fn daypart(&self) -> Daypart {
        match self.local_hour() {
            5..=11 => Daypart::Morning,
            12..=16 => Daypart::Afternoon,
            17..=22 => Daypart::Evening,
            _ => Daypart::Night,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_fields() {
        // 1970-01-01 00:00 UTC, Thursday.
        let c = Context::new(Device::Unknown, 0, 0).unwrap();
        assert_eq!((c.local_hour(), c.weekday()), (0, 3));
        // One minute before the epoch in UTC-5 is Wednesday 18:59.
        let c = Context::new(Device::Mobile, -60, -300).unwrap();
        assert_eq!((c.local_hour(), c.weekday()), (18, 2));
        assert_eq!(c.daypart(), Daypart::Evening);
    }

    #[test]
    fn devices_parse_and_offsets_are_bounded() {
        for d in Device::ALL {
            assert_eq!(d.as_str().parse::<Device>().unwrap(), d);
        }
        assert_eq!(
            "toaster".parse::<Device>().unwrap_err().code(),
            "invalid_argument"
        );
        assert!(Context::new(Device::Tv, 0, 19 * 60).is_err());
    }
}
