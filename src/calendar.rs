//! Dates, seasons and holiday calendars, with integer arithmetic only, so the trainer, the
//! simulator and the device compute exactly the same calendar features on every platform.
//!
//! Days are counted from 1970-01-01 (day 0, a Thursday) in the proleptic Gregorian calendar.
//! Each supported [`Country`] has a typical UTC offset, a main language, a hemisphere (for
//! seasons) and a list of [`Holiday`]s, each with a date rule: a fixed date, the n-th weekday
//! of a month, an offset from Western Easter, or a table of dates for lunar holidays (covering
//! 2020–2030; other years have no date for them).
//!
//! The table compiled into the crate is [`COUNTRIES`]. [`Calendar`] is the same kind of table as
//! an owned value: [`Calendar::builtin`] is [`COUNTRIES`], and a model bundle may carry another
//! one (section `CALD`, [`crate::bundle::calendar`]) so devices pick up new countries and
//! holidays without an app update. [`Calendar::next_holiday`] and [`next_holiday`] share one
//! implementation.
//!
//! ```
//! use edgerec::calendar::{self, CivilDate};
//! let day = calendar::days_from_civil(2026, 11, 20);
//! assert_eq!(calendar::civil_from_days(day), CivilDate { year: 2026, month: 11, day: 20 });
//! let us = calendar::country("US").unwrap();
//! let next = calendar::next_holiday(us, day, 60).unwrap();
//! assert_eq!((next.name, next.days_until), ("thanksgiving", 6)); // Thu 26 Nov 2026
//! let builtin = calendar::Calendar::builtin();
//! assert_eq!(builtin.next_holiday("US", day, 60), Some(next));
//! ```

use std::borrow::Cow;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The same month and day every year.
    Fixed {
        /// Month, 1–12.
        month: u8,
        /// Day, 1–31.
        day: u8,
    },
    /// The `n`-th given weekday of a month (`n` = 1…4, or −1 for the last, −2 for the one
    /// before…, down to −4).
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
    /// A table of `(year, month, day)`, for holidays set by lunar or lunisolar calendars: at
    /// most one date per year (the first one listed for a year counts). Borrowed for the
    /// built-in table, owned when decoded from a bundle.
    Table(Cow<'static, [(i32, u8, u8)]>),
}

/// Most countries a [`Calendar`] may have.
pub const MAX_COUNTRIES: usize = 512;
/// Most holidays one country of a [`Calendar`] may have.
pub const MAX_HOLIDAYS: usize = 128;
/// Most dates one [`Rule::Table`] may list.
pub const MAX_TABLE_DATES: usize = 512;
/// Longest holiday name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Offsets from Easter [`Rule::validate`] accepts: Easter falls between 22 March and 25 April,
/// so these keep the holiday inside Easter's own year (1 January … 31 December).
pub const EASTER_OFFSETS: std::ops::RangeInclusive<i16> = -80..=250;
/// Years a [`Rule::Table`] may list.
pub const TABLE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`.
fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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
            Rule::Table(ref dates) => dates
                .iter()
                .find(|d| d.0 == year)
                .map(|&(y, m, d)| days_from_civil(y, m, d)),
        }
    }

    /// Checks that the rule names real dates: months 1–12; fixed days that exist every year
    /// (so not 29 February); weekdays 0–6 and `n` in 1…4 or −4…−1; Easter offsets in
    /// [`EASTER_OFFSETS`]; tables of at most [`MAX_TABLE_DATES`] real dates in
    /// [`TABLE_YEARS`], one per year. Every rule of [`COUNTRIES`] passes.
    pub fn validate(&self) -> Result<(), String> {
        let month_ok = |m: u8| (1..=12).contains(&m);
        match *self {
            Rule::Fixed { month, day } => {
                // 2001 is not a leap year: the day must exist every year.
                if !month_ok(month) || day == 0 || day > days_in_month(2001, month) {
                    return Err(format!(
                        "fixed date {month}/{day} does not exist every year"
                    ));
                }
            }
            Rule::NthWeekday { month, weekday, n } => {
                if !month_ok(month) {
                    return Err(format!("month {month} is not 1-12"));
                }
                if weekday > 6 {
                    return Err(format!("weekday {weekday} is not 0 (Monday) - 6 (Sunday)"));
                }
                if !matches!(n, 1..=4 | -4..=-1) {
                    return Err(format!("occurrence {n} is not 1..4 or -4..-1"));
                }
            }
            Rule::Easter { offset } => {
                if !EASTER_OFFSETS.contains(&offset) {
                    return Err(format!(
                        "Easter offset {offset} is outside {}..={}",
                        EASTER_OFFSETS.start(),
                        EASTER_OFFSETS.end()
                    ));
                }
            }
            Rule::Table(ref dates) => {
                if dates.len() > MAX_TABLE_DATES {
                    return Err(format!(
                        "{} dates in a table, at most {MAX_TABLE_DATES}",
                        dates.len()
                    ));
                }
                for (i, &(y, m, d)) in dates.iter().enumerate() {
                    if !TABLE_YEARS.contains(&y)
                        || !month_ok(m)
                        || d == 0
                        || d > days_in_month(y, m)
                    {
                        return Err(format!(
                            "table date {y}-{m}-{d} is not a date of {}..={}",
                            TABLE_YEARS.start(),
                            TABLE_YEARS.end()
                        ));
                    }
                    if dates[..i].iter().any(|e| e.0 == y) {
                        return Err(format!("table lists {y} twice"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A public holiday or festive day that changes what people watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    /// Lowercase identifier, also usable as a content tag (`"christmas"`, `"halloween"`).
    pub name: &'static str,
    /// When it falls.
    pub rule: Rule,
}

/// A country edgerec has calendars for.
#[derive(Debug, Clone, PartialEq, Eq)]
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
                rule: Rule::Table(Cow::Borrowed(HOLI)),
            },
            fixed("independence_day", 8, 15),
            Holiday {
                name: "diwali",
                rule: Rule::Table(Cow::Borrowed(DIWALI)),
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
                rule: Rule::Table(Cow::Borrowed(SEOLLAL)),
            },
            Holiday {
                name: "chuseok",
                rule: Rule::Table(Cow::Borrowed(CHUSEOK)),
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
pub struct UpcomingHoliday<'a> {
    /// The holiday's name.
    pub name: &'a str,
    /// Days from the given day to the holiday: 0 on the day itself.
    pub days_until: u16,
}

/// The first holiday of `country` on or after local day `today` and at most `horizon_days`
/// ahead; ties on the same day go to the one listed first. Cost: O(holidays).
pub fn next_holiday(
    country: &Country,
    today: i64,
    horizon_days: u16,
) -> Option<UpcomingHoliday<'static>> {
    let holidays: &'static [Holiday] = country.holidays;
    first_upcoming(
        holidays.iter().map(|h| (h.name, &h.rule)),
        today,
        horizon_days,
    )
}

/// [`next_holiday`] over `(name, rule)` pairs: the one implementation both calendars use.
fn first_upcoming<'a>(
    holidays: impl Iterator<Item = (&'a str, &'a Rule)>,
    today: i64,
    horizon_days: u16,
) -> Option<UpcomingHoliday<'a>> {
    let year = civil_from_days(today).year;
    holidays
        .filter_map(|(name, rule)| {
            // This year's date, or next year's once it has passed.
            [year, year + 1]
                .iter()
                .filter_map(|&y| rule.date(y))
                .find(|&d| d >= today)
                .map(|d| (d - today, name))
        })
        .filter(|&(until, _)| until <= i64::from(horizon_days))
        .min_by_key(|&(until, _)| until)
        .map(|(until, name)| UpcomingHoliday {
            name,
            days_until: until as u16,
        })
}

/// A holiday of a [`Calendar`]: an owned [`Holiday`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayRule {
    /// Lowercase identifier (`[a-z0-9_]`, at most [`MAX_NAME_BYTES`]), also the holiday's
    /// sparse feature name.
    pub name: String,
    /// When it falls.
    pub rule: Rule,
}

/// One country of a [`Calendar`]: what the context features need of a [`Country`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryCalendar {
    /// ISO 3166-1 alpha-2 code (two uppercase ASCII letters).
    pub code: String,
    /// For seasons.
    pub hemisphere: Hemisphere,
    /// Holidays; ties on the same day go to the one listed first.
    pub holidays: Vec<HolidayRule>,
}

impl CountryCalendar {
    /// The first holiday on or after local day `today` and at most `horizon_days` ahead,
    /// exactly as [`next_holiday`] computes it for a [`Country`]. Cost: O(holidays).
    pub fn next_holiday(&self, today: i64, horizon_days: u16) -> Option<UpcomingHoliday<'_>> {
        first_upcoming(
            self.holidays.iter().map(|h| (h.name.as_str(), &h.rule)),
            today,
            horizon_days,
        )
    }
}

/// Holiday calendars per country as a value: what the trainer computed the context features
/// with and the device computes them with. [`Calendar::builtin`] is the table compiled into
/// the crate ([`COUNTRIES`]); a bundle may ship another one (`CALD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// The countries, with unique codes.
    pub countries: Vec<CountryCalendar>,
}

impl Calendar {
    /// The built-in table, [`COUNTRIES`], in its order.
    pub fn builtin() -> Calendar {
        Calendar {
            countries: COUNTRIES
                .iter()
                .map(|c| CountryCalendar {
                    code: c.code.to_string(),
                    hemisphere: c.hemisphere,
                    holidays: c
                        .holidays
                        .iter()
                        .map(|h| HolidayRule {
                            name: h.name.to_string(),
                            rule: h.rule.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The country with this code, if the calendar has it. Cost: O(countries).
    pub fn country(&self, code: &str) -> Option<&CountryCalendar> {
        self.countries.iter().find(|c| c.code == code)
    }

    /// The next holiday of the country `code` ([`CountryCalendar::next_holiday`]); `None` for
    /// a country the calendar does not have.
    pub fn next_holiday(
        &self,
        code: &str,
        today: i64,
        horizon_days: u16,
    ) -> Option<UpcomingHoliday<'_>> {
        self.country(code)?.next_holiday(today, horizon_days)
    }

    /// Every country's holiday names in calendar order, repeats included (the holiday
    /// vocabulary is their first-seen order).
    pub fn holiday_names(&self) -> impl Iterator<Item = &str> {
        self.countries
            .iter()
            .flat_map(|c| c.holidays.iter().map(|h| h.name.as_str()))
    }

    /// Number of holidays over all countries (a holiday of several countries counts in each).
    pub fn holiday_count(&self) -> usize {
        self.countries.iter().map(|c| c.holidays.len()).sum()
    }

    /// Checks the calendar: at most [`MAX_COUNTRIES`] countries with unique ISO 3166-1
    /// alpha-2 codes, at most [`MAX_HOLIDAYS`] holidays per country with unique names of
    /// `[a-z0-9_]` (1 to [`MAX_NAME_BYTES`] bytes), and every rule valid ([`Rule::validate`]).
    /// The reason names the country and holiday.
    pub fn validate(&self) -> Result<(), String> {
        if self.countries.len() > MAX_COUNTRIES {
            return Err(format!(
                "{} countries, at most {MAX_COUNTRIES}",
                self.countries.len()
            ));
        }
        for (i, c) in self.countries.iter().enumerate() {
            if c.code.len() != 2 || !c.code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "country code {:?} is not two uppercase letters",
                    c.code
                ));
            }
            if self.countries[..i].iter().any(|o| o.code == c.code) {
                return Err(format!("country {} appears twice", c.code));
            }
            if c.holidays.len() > MAX_HOLIDAYS {
                return Err(format!(
                    "{}: {} holidays, at most {MAX_HOLIDAYS}",
                    c.code,
                    c.holidays.len()
                ));
            }
            for (j, h) in c.holidays.iter().enumerate() {
                let name_ok = !h.name.is_empty()
                    && h.name.len() <= MAX_NAME_BYTES
                    && h.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !name_ok {
                    return Err(format!(
                        "{}: holiday name {:?} is not 1-{MAX_NAME_BYTES} characters of a-z, 0-9, _",
                        c.code, h.name
                    ));
                }
                if c.holidays[..j].iter().any(|o| o.name == h.name) {
                    return Err(format!("{}: holiday {} appears twice", c.code, h.name));
                }
                h.rule
                    .validate()
                    .map_err(|e| format!("{} {}: {e}", c.code, h.name))?;
            }
        }
        Ok(())
    }
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
        assert_eq!(Rule::Table(Cow::Borrowed(DIWALI)).date(1998), None);
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

    #[test]
    fn builtin_calendar_answers_like_the_static_table() {
        let cal = Calendar::builtin();
        assert_eq!(cal.countries.len(), COUNTRIES.len());
        assert_eq!(cal.validate(), Ok(()));
        let from = days_from_civil(2019, 1, 1);
        let to = days_from_civil(2032, 1, 1);
        for c in COUNTRIES {
            let owned = cal.country(c.code).unwrap();
            assert_eq!(owned.hemisphere, c.hemisphere);
            assert_eq!(owned.holidays.len(), c.holidays.len());
            for today in from..to {
                for horizon in [0, 7, 30, 400] {
                    let expected = next_holiday(c, today, horizon);
                    assert_eq!(owned.next_holiday(today, horizon), expected);
                    assert_eq!(
                        cal.next_holiday(c.code, today, horizon),
                        expected,
                        "{} day {today} horizon {horizon}",
                        c.code
                    );
                }
            }
        }
        assert_eq!(cal.country("ZZ"), None);
        assert_eq!(cal.next_holiday("ZZ", from, 400), None);
        let names: Vec<&str> = cal.holiday_names().collect();
        let expected: Vec<&str> = COUNTRIES
            .iter()
            .flat_map(|c| c.holidays.iter().map(|h| h.name))
            .collect();
        assert_eq!(names, expected);
        assert_eq!(cal.holiday_count(), expected.len());
    }

    #[test]
    fn easter_offsets_in_bounds_stay_in_easter_year() {
        for year in 1583..=2500 {
            for offset in [*EASTER_OFFSETS.start(), *EASTER_OFFSETS.end()] {
                let d = Rule::Easter { offset }.date(year).unwrap();
                assert_eq!(civil_from_days(d).year, year, "{year} {offset}");
            }
        }
    }

    #[test]
    fn invalid_rules_and_calendars_are_refused() {
        for rule in [
            Rule::Fixed { month: 0, day: 1 },
            Rule::Fixed { month: 13, day: 1 },
            Rule::Fixed { month: 1, day: 0 },
            Rule::Fixed { month: 4, day: 31 },
            Rule::Fixed { month: 2, day: 29 },
            Rule::NthWeekday {
                month: 13,
                weekday: 0,
                n: 1,
            },
            Rule::NthWeekday {
                month: 5,
                weekday: 7,
                n: 1,
            },
            Rule::NthWeekday {
                month: 5,
                weekday: 0,
                n: 0,
            },
            Rule::NthWeekday {
                month: 5,
                weekday: 0,
                n: 5,
            },
            Rule::NthWeekday {
                month: 5,
                weekday: 0,
                n: -5,
            },
            Rule::Easter { offset: -81 },
            Rule::Easter { offset: 251 },
            Rule::Table(Cow::Owned(vec![(2025, 2, 29)])),
            Rule::Table(Cow::Owned(vec![(2025, 13, 1)])),
            Rule::Table(Cow::Owned(vec![(1899, 1, 1)])),
            Rule::Table(Cow::Owned(vec![(2025, 1, 1), (2025, 2, 1)])),
            Rule::Table(Cow::Owned(vec![(2000, 1, 1); MAX_TABLE_DATES + 1])),
        ] {
            assert!(rule.validate().is_err(), "{rule:?}");
        }
        for rule in [
            Rule::Fixed { month: 12, day: 31 },
            Rule::NthWeekday {
                month: 5,
                weekday: 6,
                n: -4,
            },
            Rule::Easter { offset: -80 },
            Rule::Table(Cow::Owned(vec![(2024, 2, 29), (2200, 12, 31)])),
        ] {
            assert_eq!(rule.validate(), Ok(()), "{rule:?}");
        }
        let good = Calendar::builtin();
        let mut bad = Vec::new();
        let mut c = good.clone();
        c.countries[1].code = "US".into();
        bad.push(("duplicate country", c));
        let mut c = good.clone();
        c.countries[0].code = "us".into();
        bad.push(("lowercase code", c));
        let mut c = good.clone();
        let h = c.countries[0].holidays[0].clone();
        c.countries[0].holidays.push(h);
        bad.push(("duplicate holiday", c));
        let mut c = good.clone();
        c.countries[0].holidays[0].name = "New Year".into();
        bad.push(("bad name", c));
        let mut c = good.clone();
        c.countries[0].holidays[0].name = String::new();
        bad.push(("empty name", c));
        let mut c = good.clone();
        c.countries[0].holidays[0].rule = Rule::Fixed { month: 2, day: 30 };
        bad.push(("bad rule", c));
        let mut c = good.clone();
        c.countries[0].holidays = (0..=MAX_HOLIDAYS)
            .map(|i| HolidayRule {
                name: format!("h{i}"),
                rule: Rule::Fixed { month: 1, day: 1 },
            })
            .collect();
        bad.push(("too many holidays", c));
        for (what, c) in bad {
            assert!(c.validate().is_err(), "{what}");
        }
        // A holiday shared with other countries is fine; the empty calendar too.
        assert_eq!(Calendar { countries: vec![] }.validate(), Ok(()));
    }
}
