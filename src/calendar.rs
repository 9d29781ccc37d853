//! Dates, seasons and holiday calendars, with integer arithmetic only, so the trainer, the
//! simulator and the device compute exactly the same calendar features on every platform.
//!
//! Days are counted from 1970-01-01 (day 0, a Thursday) in the proleptic Gregorian calendar.
//! Each supported [`Country`] has a typical UTC offset, a main language, a hemisphere (for
//! seasons) and a list of [`Holiday`]s, each with a date rule: a fixed date, the n-th weekday
//! of a month, an offset from Western Easter, or a table of dates for lunar holidays (covering
//! 2020–2030; other years have no date for them).
//!
//! ```
//! use edgerec::calendar::{self, CivilDate};
//! let day = calendar::days_from_civil(2026, 11, 20);
//! assert_eq!(calendar::civil_from_days(day), CivilDate { year: 2026, month: 11, day: 20 });
//! let us = calendar::country("US").unwrap();
//! let next = calendar::next_holiday(us, day, 60).unwrap();
//! assert_eq!((next.name, next.days_until), ("thanksgiving", 6)); // Thu 26 Nov 2026
//! ```

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    /// Year (astronomical numbering).
    pub year: i32,
    /// Month, 1–12.
    pub month: u8,
    /// Day of month, 1–31.
    pub day: u8,
}

/// Days since 1970-01-01 of a date (H. Hinnant's `days_from_civil`). Months and days out of
/// range are not checked; pass real dates.
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> CivilDate {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    CivilDate { year, month, day }
}

/// Day of week of a day count, Monday = 0 … Sunday = 6.
pub fn weekday(days: i64) -> u8 {
    (days + 3).rem_euclid(7) as u8
}

/// The local day count of a unix timestamp at a UTC offset.
pub fn local_days(timestamp: i64, utc_offset_minutes: i32) -> i64 {
    local_seconds(timestamp, utc_offset_minutes).div_euclid(86_400)
}

/// Seconds since the local epoch: the timestamp shifted by the offset (saturating).
pub fn local_seconds(timestamp: i64, utc_offset_minutes: i32) -> i64 {
    timestamp.saturating_add(i64::from(utc_offset_minutes) * 60)
}

/// Half of the globe, for seasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hemisphere {
    /// Winter in December–February.
    Northern,
    /// Winter in June–August.
    Southern,
}

/// Meteorological season.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Season {
    /// Dec–Feb in the north.
    Winter,
    /// Mar–May in the north.
    Spring,
    /// Jun–Aug in the north.
    Summer,
    /// Sep–Nov in the north.
    Autumn,
}

impl Season {
    /// All seasons in a fixed order.
    pub const ALL: [Season; 4] = [
        Season::Winter,
        Season::Spring,
        Season::Summer,
        Season::Autumn,
    ];

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Season::Winter => "winter",
            Season::Spring => "spring",
            Season::Summer => "summer",
            Season::Autumn => "autumn",
        }
    }
}

/// The meteorological season of a month in a hemisphere.
pub fn season(month: u8, hemisphere: Hemisphere) -> Season {
    let north = match month {
        12 | 1 | 2 => Season::Winter,
        3..=5 => Season::Spring,
        6..=8 => Season::Summer,
        _ => Season::Autumn,
    };
    match hemisphere {
        Hemisphere::Northern => north,
        Hemisphere::Southern => match north {
            Season::Winter => Season::Summer,
            Season::Spring => Season::Autumn,
            Season::Summer => Season::Winter,
            Season::Autumn => Season::Spring,
        },
    }
}

/// How a holiday's date is found in a given year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The same month and day every year.
    Fixed {
        /// Month, 1–12.
        month: u8,
        /// Day, 1–31.
        day: u8,
    },
    /// The `n`-th given weekday of a month (`n` = 1…4, or −1 for the last).
    NthWeekday {
        /// Month, 1–12.
        month: u8,
        /// Monday = 0 … Sunday = 6.
        weekday: u8,
        /// Which occurrence; −1 is the last.
        n: i8,
    },
    /// Days after (or before, if negative) Western Easter Sunday.
    Easter {
        /// Offset in days.
        offset: i16,
    },
    /// A table of `(year, month, day)`, for holidays set by lunar or lunisolar calendars.
    Table(&'static [(i32, u8, u8)]),
}

/// Western (Gregorian) Easter Sunday of a year (the anonymous Gregorian computus).
pub fn easter(year: i32) -> CivilDate {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    CivilDate {
        year,
        month: month as u8,
        day: day as u8,
    }
}

impl Rule {
    /// The day count of the holiday in `year`, if it has a date that year.
    pub fn date(&self, year: i32) -> Option<i64> {
        match *self {
            Rule::Fixed { month, day } => Some(days_from_civil(year, month, day)),
            Rule::NthWeekday {
                month,
                weekday: wd,
                n,
            } => {
                if n > 0 {
                    let first = days_from_civil(year, month, 1);
                    let shift = (i64::from(wd) - i64::from(weekday(first))).rem_euclid(7);
                    Some(first + shift + 7 * (i64::from(n) - 1))
                } else {
                    let (ny, nm) = if month == 12 {
                        (year + 1, 1)
                    } else {
                        (year, month + 1)
                    };
                    let last = days_from_civil(ny, nm, 1) - 1;
                    let back = (i64::from(weekday(last)) - i64::from(wd)).rem_euclid(7);
                    Some(last - back + 7 * (i64::from(n) + 1))
                }
            }
            Rule::Easter { offset } => {
                let e = easter(year);
                Some(days_from_civil(e.year, e.month, e.day) + i64::from(offset))
            }
            Rule::Table(dates) => dates
                .iter()
                .find(|d| d.0 == year)
                .map(|&(y, m, d)| days_from_civil(y, m, d)),
        }
    }
}

/// A public holiday or festive day that changes what people watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    /// Lowercase identifier, also usable as a content tag (`"christmas"`, `"halloween"`).
    pub name: &'static str,
    /// When it falls.
    pub rule: Rule,
}

/// A country edgerec has calendars for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    /// ISO 3166-1 alpha-2 code.
    pub code: &'static str,
    /// Typical offset from UTC in minutes (standard time of the most populous zone).
    pub utc_offset_minutes: i32,
    /// Main language, ISO 639-1.
    pub language: &'static str,
    /// For seasons.
    pub hemisphere: Hemisphere,
    /// Holidays, in no particular order.
    pub holidays: &'static [Holiday],
}

const fn fixed(name: &'static str, month: u8, day: u8) -> Holiday {
    Holiday {
        name,
        rule: Rule::Fixed { month, day },
    }
}

const fn from_easter(name: &'static str, offset: i16) -> Holiday {
    Holiday {
        name,
        rule: Rule::Easter { offset },
    }
}

const NEW_YEAR: Holiday = fixed("new_year", 1, 1);
const VALENTINES: Holiday = fixed("valentines", 2, 14);
const EASTER: Holiday = from_easter("easter", 0);
const CARNIVAL: Holiday = from_easter("carnival", -47);
const HALLOWEEN: Holiday = fixed("halloween", 10, 31);
const CHRISTMAS: Holiday = fixed("christmas", 12, 25);

/// Diwali, 2020–2030.
const DIWALI: &[(i32, u8, u8)] = &[
    (2020, 11, 14),
    (2021, 11, 4),
    (2022, 10, 24),
    (2023, 11, 12),
    (2024, 11, 1),
    (2025, 10, 20),
    (2026, 11, 8),
    (2027, 10, 29),
    (2028, 10, 17),
    (2029, 11, 5),
    (2030, 10, 26),
];
/// Holi, 2020–2030.
const HOLI: &[(i32, u8, u8)] = &[
    (2020, 3, 10),
    (2021, 3, 29),
    (2022, 3, 18),
    (2023, 3, 8),
    (2024, 3, 25),
    (2025, 3, 14),
    (2026, 3, 4),
    (2027, 3, 22),
    (2028, 3, 11),
    (2029, 3, 1),
    (2030, 3, 20),
];
/// Seollal (Korean lunar new year), 2020–2030.
const SEOLLAL: &[(i32, u8, u8)] = &[
    (2020, 1, 25),
    (2021, 2, 12),
    (2022, 2, 1),
    (2023, 1, 22),
    (2024, 2, 10),
    (2025, 1, 29),
    (2026, 2, 17),
    (2027, 2, 7),
    (2028, 1, 27),
    (2029, 2, 13),
    (2030, 2, 3),
];
/// Chuseok, 2020–2030.
const CHUSEOK: &[(i32, u8, u8)] = &[
    (2020, 10, 1),
    (2021, 9, 21),
    (2022, 9, 10),
    (2023, 9, 29),
    (2024, 9, 17),
    (2025, 10, 6),
    (2026, 9, 25),
    (2027, 9, 15),
    (2028, 10, 3),
    (2029, 9, 22),
    (2030, 9, 12),
];

/// Every supported country, by code.
pub const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        utc_offset_minutes: -300,
        language: "en",
        hemisphere: Hemisphere::Northern,
        holidays: &[
            NEW_YEAR,
            VALENTINES,
            EASTER,
            fixed("independence_day", 7, 4),
            HALLOWEEN,
            Holiday {
                name: "thanksgiving",
                rule: Rule::NthWeekday {
                    month: 11,
                    weekday: 3,
                    n: 4,
                },
            },
            CHRISTMAS,
        ],
    },
    Country {
        code: "GB",
        utc_offset_minutes: 0,
        language: "en",
        hemisphere: Hemisphere::Northern,
        holidays: &[
            NEW_YEAR,
            VALENTINES,
            EASTER,
            HALLOWEEN,
            fixed("bonfire_night", 11, 5),
            CHRISTMAS,
            fixed("boxing_day", 12, 26),
        ],
    },
    Country {
        code: "DE",
        utc_offset_minutes: 60,
        language: "de",
        hemisphere: Hemisphere::Northern,
        holidays: &[
            NEW_YEAR,
            from_easter("carnival", -48),
            EASTER,
            fixed("unity_day", 10, 3),
            CHRISTMAS,
        ],
    },
    Country {
        code: "FR",
        utc_offset_minutes: 60,
        language: "fr",
        hemisphere: Hemisphere::Northern,
        holidays: &[NEW_YEAR, EASTER, fixed("bastille_day", 7, 14), CHRISTMAS],
    },
    Country {
        code: "ES",
        utc_offset_minutes: 60,
        language: "es",
        hemisphere: Hemisphere::Northern,
        holidays: &[NEW_YEAR, fixed("epiphany", 1, 6), EASTER, CHRISTMAS],
    },
    Country {
        code: "BR",
        utc_offset_minutes: -180,
        language: "pt",
        hemisphere: Hemisphere::Southern,
        holidays: &[NEW_YEAR, CARNIVAL, EASTER, CHRISTMAS],
    },
    Country {
        code: "MX",
        utc_offset_minutes: -360,
        language: "es",
        hemisphere: Hemisphere::Northern,
        holidays: &[
            NEW_YEAR,
            EASTER,
            fixed("independence_day", 9, 16),
            fixed("day_of_the_dead", 11, 2),
            CHRISTMAS,
        ],
    },
    Country {
        code: "IN",
        utc_offset_minutes: 330,
        language: "hi",
        hemisphere: Hemisphere::Northern,
        holidays: &[
            NEW_YEAR,
            Holiday {
                name: "holi",
                rule: Rule::Table(HOLI),
            },
            fixed("independence_day", 8, 15),
            Holiday {
                name: "diwali",
                rule: Rule::Table(DIWALI),
            },
            CHRISTMAS,
        ],
    },
    Country {
        code: "JP",
        utc_offset_minutes: 540,
        language: "ja",
        hemisphere: Hemisphere::Northern,
        holidays: &[
            NEW_YEAR,
            fixed("golden_week", 5, 3),
            fixed("obon", 8, 13),
            CHRISTMAS,
        ],
    },
    Country {
        code: "KR",
        utc_offset_minutes: 540,
        language: "ko",
        hemisphere: Hemisphere::Northern,
        holidays: &[
            NEW_YEAR,
            Holiday {
                name: "seollal",
                rule: Rule::Table(SEOLLAL),
            },
            Holiday {
                name: "chuseok",
                rule: Rule::Table(CHUSEOK),
            },
            CHRISTMAS,
        ],
    },
    Country {
        code: "AU",
        utc_offset_minutes: 600,
        language: "en",
        hemisphere: Hemisphere::Southern,
        holidays: &[NEW_YEAR, fixed("australia_day", 1, 26), EASTER, CHRISTMAS],
    },
];

/// The country with this ISO code, if supported.
pub fn country(code: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.code == code)
}

/// A holiday ahead of a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpcomingHoliday {
    /// The holiday's name.
    pub name: &'static str,
    /// Days from the given day to the holiday: 0 on the day itself.
    pub days_until: u16,
}

/// The first holiday of `country` on or after local day `today` and at most `horizon_days`
/// ahead; ties on the same day go to the one listed first. Cost: O(holidays).
pub fn next_holiday(country: &Country, today: i64, horizon_days: u16) -> Option<UpcomingHoliday> {
    let year = civil_from_days(today).year;
    country
        .holidays
        .iter()
        .filter_map(|h| {
            // This year's date, or next year's once it has passed.
            [year, year + 1]
                .iter()
                .filter_map(|&y| h.rule.date(y))
                .find(|&d| d >= today)
                .map(|d| (d - today, h.name))
        })
        .filter(|&(until, _)| until <= i64::from(horizon_days))
        .min_by_key(|&(until, _)| until)
        .map(|(until, name)| UpcomingHoliday {
            name,
            days_until: until as u16,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in (-800_000..800_000).step_by(97) {
            let d = civil_from_days(days);
            assert_eq!(days_from_civil(d.year, d.month, d.day), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(weekday(days_from_civil(2026, 11, 29)), 6); // a Sunday
    }

    #[test]
    fn easter_dates() {
        for (y, m, d) in [
            (1998, 4, 12),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2038, 4, 25),
        ] {
            assert_eq!(
                easter(y),
                CivilDate {
                    year: y,
                    month: m,
                    day: d
                },
                "{y}"
            );
        }
    }

    #[test]
    fn weekday_rules() {
        // Thanksgiving: fourth Thursday of November.
        let thanksgiving = Rule::NthWeekday {
            month: 11,
            weekday: 3,
            n: 4,
        };
        assert_eq!(civil_from_days(thanksgiving.date(2025).unwrap()).day, 27);
        assert_eq!(civil_from_days(thanksgiving.date(2026).unwrap()).day, 26);
        // Last Monday of May 2026 (US Memorial Day) is the 25th.
        let last_monday = Rule::NthWeekday {
            month: 5,
            weekday: 0,
            n: -1,
        };
        assert_eq!(civil_from_days(last_monday.date(2026).unwrap()).day, 25);
        assert_eq!(Rule::Table(DIWALI).date(1998), None);
    }

    #[test]
    fn next_holiday_wraps_the_year_and_respects_the_horizon() {
        let gb = country("GB").unwrap();
        let dec27 = days_from_civil(2026, 12, 27);
        assert_eq!(
            next_holiday(gb, dec27, 10),
            Some(UpcomingHoliday {
                name: "new_year",
                days_until: 5
            })
        );
        assert_eq!(next_holiday(gb, dec27, 4), None);
        let xmas = days_from_civil(2026, 12, 25);
        assert_eq!(next_holiday(gb, xmas, 0).unwrap().name, "christmas");
    }

    #[test]
    fn seasons_flip_south_of_the_equator() {
        assert_eq!(season(12, Hemisphere::Northern), Season::Winter);
        assert_eq!(season(12, Hemisphere::Southern), Season::Summer);
        assert_eq!(season(4, Hemisphere::Southern), Season::Autumn);
        assert!(COUNTRIES.iter().all(|c| country(c.code) == Some(c)));
    }
}
