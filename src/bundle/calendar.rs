//! The holiday calendar section (`CALD`): the calendar the context features were computed
//! with, so devices use the server's calendar (new countries and holidays without an app
//! update) and the trainer and the device use the very same one.
//!
//! * `CALD` v1 ([`Calendar`]): `countries: [country]`, where a country is `code: str`
//!   (ISO 3166-1 alpha-2), `hemisphere: u8` (0 northern, 1 southern), `holidays: [holiday]`,
//!   and a holiday is `name: str, kind: u8` followed by its rule ([`Rule`]):
//!   * kind 0, fixed date: `month: u8, day: u8`;
//!   * kind 1, n-th weekday of a month: `month: u8, weekday: u8` (0 Monday … 6 Sunday),
//!     `n: i8` (1…4, or −1 for the last … −4);
//!   * kind 2, offset from Western Easter: `offset: i16` (days);
//!   * kind 3, table: `dates: [(year: i32, month: u8, day: u8)]`, at most one per year.
//!
//!   Signed integers are two's complement, little-endian like the rest. The reader refuses
//!   (`malformed`) unknown kinds and hemispheres, and anything [`Calendar::validate`] refuses:
//!   months outside 1–12, days that do not exist, weekdays above 6, `n` outside 1…4 and −4…−1,
//!   Easter offsets outside [`crate::calendar::EASTER_OFFSETS`], repeated countries, holiday
//!   names or table years, and more than [`crate::calendar::MAX_COUNTRIES`] countries,
//!   [`crate::calendar::MAX_HOLIDAYS`] holidays per country or
//!   [`crate::calendar::MAX_TABLE_DATES`] dates per table.
//!
//! A bundle without `CALD` uses [`Calendar::builtin`]. With `FEAT`, the loaded feature space
//! is rebuilt over the bundle's calendar ([`FeatureSpace::with_calendar`]): its context
//! features (season by hemisphere, upcoming holiday, days to it) come from `CALD`; the dense
//! feature names do not depend on the calendar, and the built-in holidays keep their sparse
//! ids (new ones are numbered after them, [`FeatureSpace::holidays`]). Encoding requires the
//! `FEAT` space's calendar to be the one the bundle ships (`CALD`, or the built-in calendar
//! without it), so what the trainer computed with is what the device computes with.

use std::borrow::Cow;

use super::FeatureContract;
use super::codec::{Reader, Writer};
use crate::calendar::{Calendar, CountryCalendar, Hemisphere, HolidayRule, Rule};
use crate::error::BundleError;
use crate::features::FeatureSpace;

const WHAT: &str = "CALD";

/// The `CALD` v1 payload of a calendar.
pub fn encode_calendar(calendar: &Calendar) -> Vec<u8> {
    let mut w = Writer::new();
    w.len(calendar.countries.len());
    for c in &calendar.countries {
        w.str(&c.code);
        w.u8(match c.hemisphere {
            Hemisphere::Northern => 0,
            Hemisphere::Southern => 1,
        });
        w.len(c.holidays.len());
        for h in &c.holidays {
            w.str(&h.name);
            match &h.rule {
                Rule::Fixed { month, day } => {
                    w.u8(0);
                    w.u8(*month);
                    w.u8(*day);
                }
                Rule::NthWeekday { month, weekday, n } => {
                    w.u8(1);
                    w.u8(*month);
                    w.u8(*weekday);
                    w.u8(*n as u8);
                }
                Rule::Easter { offset } => {
                    w.u8(2);
                    w.u16(*offset as u16);
                }
                Rule::Table(dates) => {
                    w.u8(3);
                    w.len(dates.len());
                    for &(y, m, d) in dates.iter() {
                        w.u32(y as u32);
                        w.u8(m);
                        w.u8(d);
                    }
                }
            }
        }
    }
    w.finish()
}

/// Smallest encodings, for bounding counts before allocating: a country is an empty code
/// (4), a hemisphere (1) and a holiday count (4); a holiday an empty name (4), a kind (1) and
/// the smallest rule (2); a table date 6 bytes.
const MIN_COUNTRY: usize = 9;
const MIN_HOLIDAY: usize = 7;
const DATE: usize = 6;

/// Decodes and validates a `CALD` v1 payload. Never panics; allocation is bounded by the
/// payload's length.
pub fn decode_calendar(b: &[u8]) -> Result<Calendar, BundleError> {
    let mut r = Reader::new(b, WHAT);
    let n = r.len(MIN_COUNTRY)?;
    let mut countries = Vec::with_capacity(n);
    for _ in 0..n {
        let code = r.str()?;
        let hemisphere = match r.u8()? {
            0 => Hemisphere::Northern,
            1 => Hemisphere::Southern,
            h => return Err(r.malformed(format!("country {code:?}: hemisphere {h}"))),
        };
        let n_holidays = r.len(MIN_HOLIDAY)?;
        let mut holidays = Vec::with_capacity(n_holidays);
        for _ in 0..n_holidays {
            let name = r.str()?;
            let rule = match r.u8()? {
                0 => Rule::Fixed {
                    month: r.u8()?,
                    day: r.u8()?,
                },
                1 => Rule::NthWeekday {
                    month: r.u8()?,
                    weekday: r.u8()?,
                    n: r.u8()? as i8,
                },
                2 => Rule::Easter {
                    offset: r.u16()? as i16,
                },
                3 => {
                    let n_dates = r.len(DATE)?;
                    let mut dates = Vec::with_capacity(n_dates);
                    for _ in 0..n_dates {
                        dates.push((r.u32()? as i32, r.u8()?, r.u8()?));
                    }
                    Rule::Table(Cow::Owned(dates))
                }
                k => {
                    return Err(r.malformed(format!(
                        "country {code:?} holiday {name:?}: unknown rule kind {k}"
                    )));
                }
            };
            holidays.push(HolidayRule { name, rule });
        }
        countries.push(CountryCalendar {
            code,
            hemisphere,
            holidays,
        });
    }
    r.finish()?;
    let calendar = Calendar { countries };
    calendar.validate().map_err(malformed)?;
    Ok(calendar)
}

fn malformed(reason: String) -> BundleError {
    BundleError::Malformed {
        what: WHAT.into(),
        reason,
    }
}

/// The feature contract as the device uses it: its space rebuilt over the bundle's calendar
/// when the bundle ships one (`features` as decoded from `FEAT` is over the built-in one).
pub(super) fn with_bundle_calendar(
    features: Option<FeatureContract>,
    calendar: Option<&Calendar>,
) -> Option<FeatureContract> {
    match (features, calendar) {
        (Some(f), Some(cal)) if f.space().calendar() != cal => {
            let s = f.space();
            Some(FeatureContract::new(FeatureSpace::with_calendar(
                s.vocabularies().clone(),
                s.config(),
                cal.clone(),
            )))
        }
        (features, _) => features,
    }
}

/// `CALD` on its own ([`Calendar::validate`]) and against `FEAT`: the feature space must use
/// the calendar the bundle ships (the built-in one without `CALD`).
pub(super) fn check(
    calendar: Option<&Calendar>,
    features: Option<&FeatureContract>,
) -> Result<(), BundleError> {
    if let Some(cal) = calendar {
        cal.validate().map_err(malformed)?;
    }
    if let Some(f) = features {
        let consistent = match calendar {
            Some(cal) => f.space().calendar() == cal,
            None => *f.space().calendar() == Calendar::builtin(),
        };
        if !consistent {
            return Err(BundleError::Contract {
                reason: if calendar.is_some() {
                    "the feature contract's space uses another holiday calendar than the \
                     bundle's CALD"
                        .into()
                } else {
                    "the feature contract's space uses a holiday calendar other than the \
                     built-in one, and the bundle has no CALD to ship it"
                        .into()
                },
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{BundleContents, ContainerWriter, sections};
    use crate::calendar::{self, UpcomingHoliday};
    use crate::context::{Context, Device};
    use crate::features::{Gender, UserProfile};
    use crate::test_support::{tiny_contents, tiny_contents_for_device};

    /// The built-in calendar plus a US holiday on 22 November and a southern country.
    fn extended() -> Calendar {
        let mut cal = Calendar::builtin();
        let us = cal.countries.iter_mut().find(|c| c.code == "US").unwrap();
        us.holidays.push(HolidayRule {
            name: "streaming_day".into(),
            rule: Rule::Fixed { month: 11, day: 22 },
        });
        cal.countries.push(CountryCalendar {
            code: "NZ".into(),
            hemisphere: Hemisphere::Southern,
            holidays: vec![
                HolidayRule {
                    name: "waitangi_day".into(),
                    rule: Rule::Fixed { month: 2, day: 6 },
                },
                HolidayRule {
                    name: "labour_day".into(),
                    rule: Rule::NthWeekday {
                        month: 10,
                        weekday: 0,
                        n: 4,
                    },
                },
                HolidayRule {
                    name: "last_sunday".into(),
                    rule: Rule::NthWeekday {
                        month: 9,
                        weekday: 6,
                        n: -1,
                    },
                },
                HolidayRule {
                    name: "good_friday".into(),
                    rule: Rule::Easter { offset: -2 },
                },
                HolidayRule {
                    name: "matariki".into(),
                    rule: Rule::Table(Cow::Owned(vec![(2025, 6, 20), (2026, 7, 10)])),
                },
            ],
        });
        cal
    }

    #[test]
    fn round_trip() {
        for cal in [
            Calendar::builtin(),
            extended(),
            Calendar { countries: vec![] },
        ] {
            let payload = encode_calendar(&cal);
            assert_eq!(decode_calendar(&payload).unwrap(), cal);
            // Deterministic.
            assert_eq!(encode_calendar(&cal), payload);
        }
        // The decoded built-in calendar answers like the static table.
        let decoded = decode_calendar(&encode_calendar(&Calendar::builtin())).unwrap();
        let day = calendar::days_from_civil(2026, 9, 1);
        for c in calendar::COUNTRIES {
            for today in day..day + 400 {
                assert_eq!(
                    decoded.next_holiday(c.code, today, 30),
                    calendar::next_holiday(c, today, 30)
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let payload = encode_calendar(&extended());
        for cut in 0..payload.len() {
            let err = decode_calendar(&payload[..cut]).unwrap_err();
            assert!(
                matches!(&err, BundleError::Malformed { what, .. } if what == "CALD"),
                "cut at {cut}: {err}"
            );
        }
        let mut longer = payload.clone();
        longer.push(0);
        assert!(decode_calendar(&longer).is_err());
    }

    /// A one-country, one-holiday payload with the given rule bytes.
    fn one(code: &str, hemisphere: u8, name: &str, rule: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.len(1);
        w.str(code);
        w.u8(hemisphere);
        w.len(1);
        w.str(name);
        let mut p = w.finish();
        p.extend_from_slice(rule);
        p
    }

    #[test]
    fn invalid_rules_are_refused() {
        let ok = one("US", 0, "x", &[0, 12, 31]);
        assert!(decode_calendar(&ok).is_ok());
        let table = |dates: &[(i32, u8, u8)]| {
            let mut r = vec![3];
            r.extend_from_slice(&(dates.len() as u32).to_le_bytes());
            for &(y, m, d) in dates {
                r.extend_from_slice(&y.to_le_bytes());
                r.extend_from_slice(&[m, d]);
            }
            r
        };
        assert!(decode_calendar(&one("US", 0, "x", &table(&[(2024, 2, 29)]))).is_ok());
        for (why, payload) in [
            ("month 0", one("US", 0, "x", &[0, 0, 1])),
            ("month 13", one("US", 0, "x", &[0, 13, 1])),
            ("day 0", one("US", 0, "x", &[0, 1, 0])),
            ("31 April", one("US", 0, "x", &[0, 4, 31])),
            ("29 February", one("US", 0, "x", &[0, 2, 29])),
            ("weekday 7", one("US", 0, "x", &[1, 5, 7, 1])),
            ("n 0", one("US", 0, "x", &[1, 5, 0, 0])),
            ("n 5", one("US", 0, "x", &[1, 5, 0, 5])),
            ("n -5", one("US", 0, "x", &[1, 5, 0, (-5i8) as u8])),
            ("weekday month 0", one("US", 0, "x", &[1, 0, 0, 1])),
            ("easter +251", one("US", 0, "x", &[2, 251, 0])),
            (
                "easter -81",
                one(
                    "US",
                    0,
                    "x",
                    &[2, (-81i16 as u16) as u8, (-81i16 >> 8) as u8],
                ),
            ),
            (
                "table 2025-02-29",
                one("US", 0, "x", &table(&[(2025, 2, 29)])),
            ),
            (
                "table year 1800",
                one("US", 0, "x", &table(&[(1800, 1, 1)])),
            ),
            (
                "table year twice",
                one("US", 0, "x", &table(&[(2025, 1, 1), (2025, 3, 1)])),
            ),
            ("unknown kind", one("US", 0, "x", &[4, 1, 1])),
            ("hemisphere 2", one("US", 2, "x", &[0, 1, 1])),
            ("lowercase code", one("us", 0, "x", &[0, 1, 1])),
            ("long code", one("USA", 0, "x", &[0, 1, 1])),
            ("empty name", one("US", 0, "", &[0, 1, 1])),
            ("upper-case name", one("US", 0, "New", &[0, 1, 1])),
            ("huge country count", {
                let mut p = ok.clone();
                p[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
                p
            }),
            ("huge holiday count", {
                let mut p = ok.clone();
                p[11..15].copy_from_slice(&u32::MAX.to_le_bytes());
                p
            }),
            ("huge table", {
                let mut p = one("US", 0, "x", &table(&[(2025, 1, 1)]));
                let at = p.len() - DATE - 4;
                p[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
                p
            }),
        ] {
            let err = decode_calendar(&payload).unwrap_err();
            assert!(
                matches!(&err, BundleError::Malformed { what, .. } if what == "CALD"),
                "{why}: {err}"
            );
        }
        // Repeated countries and holiday names, too many countries.
        let mut cal = extended();
        let us = cal.countries[0].clone();
        cal.countries.push(us);
        assert!(decode_calendar(&encode_calendar(&cal)).is_err());
        let mut cal = extended();
        let h = cal.countries[0].holidays[0].clone();
        cal.countries[0].holidays.push(h);
        assert!(decode_calendar(&encode_calendar(&cal)).is_err());
        let many = Calendar {
            countries: (0..=calendar::MAX_COUNTRIES)
                .map(|i| CountryCalendar {
                    code: format!(
                        "{}{}",
                        (b'A' + (i / 26 % 26) as u8) as char,
                        (b'A' + (i % 26) as u8) as char
                    ),
                    hemisphere: Hemisphere::Northern,
                    holidays: vec![],
                })
                .collect(),
        };
        assert!(decode_calendar(&encode_calendar(&many)).is_err());
    }

    /// The days-to-holiday feature and the sparse holiday of a US user on 2026-11-20, as the
    /// loaded bundle's feature space computes them (context through the full vector).
    fn us_holiday(c: &BundleContents) -> (f32, Option<String>) {
        let space = c.features.as_ref().unwrap().space();
        // The device fixture's titles (not every bundle below carries MDIA).
        let titles = tiny_contents_for_device().media.unwrap();
        let media = c.media.as_ref().unwrap_or(&titles);
        let profile = UserProfile {
            age: None,
            gender: Gender::Unknown,
            language: 0,
            country: space.vocabularies().countries.id("US"),
            utc_offset_minutes: 0,
            signup_time: 0,
            onboarding_genres: vec![],
        };
        let t = calendar::days_from_civil(2026, 11, 20) * 86_400 + 21 * 3_600;
        let ctx = Context::new(Device::Tv, t, 0).unwrap();
        let context = space.context(&profile, &ctx);
        let user = space.user_state(&profile, &[], media.media(), t);
        let fv = space.features(&user, &context, &media.media()[0], 0, media.stats()[0]);
        let days = space
            .dense_names()
            .iter()
            .position(|n| n == "ctx.days_to_holiday")
            .unwrap();
        (
            fv.dense[days],
            space.holidays().name(fv.sparse.holiday).map(str::to_string),
        )
    }

    #[test]
    fn a_bundle_calendar_changes_the_device_context_features() {
        let base = tiny_contents_for_device();
        assert!(base.calendar.is_none());
        // Without CALD: the built-in calendar, as today (Thanksgiving in 6 days).
        let old = BundleContents::decode(&base.encode()).unwrap();
        assert_eq!(us_holiday(&old), (6.0 / 30.0, Some("thanksgiving".into())));
        assert_eq!(
            old.features.as_ref().unwrap().space().calendar(),
            &Calendar::builtin()
        );

        // With CALD adding 22 November for the US: 2 days. Encoded by a trainer whose space
        // used that calendar, the bundle round-trips exactly.
        let cal = extended();
        let f = base.features.as_ref().unwrap().space();
        let space = FeatureSpace::with_calendar(f.vocabularies().clone(), f.config(), cal.clone());
        let with = BundleContents {
            features: Some(FeatureContract::new(space)),
            calendar: Some(cal.clone()),
            ..base.clone()
        };
        let bytes = with.encode();
        let new = BundleContents::decode(&bytes).unwrap();
        assert_eq!(new, with);
        assert_eq!(us_holiday(&new), (2.0 / 30.0, Some("streaming_day".into())));

        // A server adding CALD to a bundle whose FEAT was written over the built-in calendar:
        // the device's space is rebuilt over the bundle's calendar.
        let mut w = ContainerWriter::default();
        w.section(*b"META", 1, sections::encode_meta(&base.meta));
        w.section(*b"CATL", 1, sections::encode_catalog(&base.catalog));
        w.section(*b"POPL", 1, sections::encode_popularity(&base.popularity));
        w.section(*b"FEAT", 1, base.features.as_ref().unwrap().to_payload());
        w.section(*b"CALD", 1, encode_calendar(&cal));
        let served = BundleContents::decode(&w.finish()).unwrap();
        assert_eq!(
            us_holiday(&served),
            (2.0 / 30.0, Some("streaming_day".into()))
        );
        assert_eq!(served.calendar.as_ref(), Some(&cal));
        // The dense names are the same whatever the calendar.
        assert_eq!(
            served.features.as_ref().unwrap().space().dense_names(),
            f.dense_names()
        );
        // Appending keeps the built-in holiday ids.
        let served_space = served.features.as_ref().unwrap().space();
        assert_eq!(
            served_space.holidays().id("christmas"),
            f.holidays().id("christmas")
        );

        // CALD without FEAT is carried; an unknown CALD version is skipped (built-in calendar).
        let mut only = tiny_contents();
        only.calendar = Some(cal.clone());
        let b = BundleContents::decode(&only.encode()).unwrap();
        assert_eq!(b, only);
        let mut w = ContainerWriter::default();
        w.section(*b"META", 1, sections::encode_meta(&base.meta));
        w.section(*b"CATL", 1, sections::encode_catalog(&base.catalog));
        w.section(*b"POPL", 1, sections::encode_popularity(&base.popularity));
        w.section(*b"FEAT", 1, base.features.as_ref().unwrap().to_payload());
        w.section(*b"CALD", 2, vec![0xff; 5]);
        let future = BundleContents::decode(&w.finish()).unwrap();
        assert!(future.calendar.is_none());
        assert_eq!(us_holiday(&future), us_holiday(&old));

        // A malformed CALD refuses the bundle by name.
        let mut bad = with.clone();
        bad.calendar.as_mut().unwrap().countries[0].holidays[0].rule =
            Rule::Fixed { month: 2, day: 30 };
        assert!(matches!(
            bad.validate(),
            Err(BundleError::Malformed { what, .. }) if what == "CALD"
        ));
    }

    #[test]
    fn the_feature_space_must_use_the_shipped_calendar() {
        let base = tiny_contents_for_device();
        let cal = extended();
        // FEAT over the built-in calendar, CALD another one: the trainer's features would not
        // be the device's.
        let mismatch = BundleContents {
            calendar: Some(cal.clone()),
            ..base.clone()
        };
        assert!(matches!(
            mismatch.validate(),
            Err(BundleError::Contract { .. })
        ));
        // FEAT over a custom calendar that the bundle does not ship.
        let f = base.features.as_ref().unwrap().space();
        let unshipped = BundleContents {
            features: Some(FeatureContract::new(FeatureSpace::with_calendar(
                f.vocabularies().clone(),
                f.config(),
                cal,
            ))),
            ..base.clone()
        };
        assert!(matches!(
            unshipped.validate(),
            Err(BundleError::Contract { .. })
        ));
        // The built-in calendar shipped explicitly is consistent with a default space.
        let explicit = BundleContents {
            calendar: Some(Calendar::builtin()),
            ..base
        };
        assert_eq!(explicit.validate(), Ok(()));
        let loaded = BundleContents::decode(&explicit.encode()).unwrap();
        assert_eq!(loaded, explicit);
    }

    #[test]
    fn next_holiday_of_a_decoded_calendar() {
        let cal = decode_calendar(&encode_calendar(&extended())).unwrap();
        let day = calendar::days_from_civil(2026, 7, 1);
        assert_eq!(
            cal.next_holiday("NZ", day, 30),
            Some(UpcomingHoliday {
                name: "matariki",
                days_until: 9
            })
        );
    }

    proptest::proptest! {
        /// Arbitrary bytes, or a real payload with a few bytes overwritten or cut, decode to a
        /// valid calendar or an error, never a panic.
        #[test]
        fn arbitrary_payloads_never_panic(
            random in proptest::collection::vec(proptest::num::u8::ANY, 0..128),
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 0..6),
            cut in proptest::option::of(proptest::num::usize::ANY),
            use_random in proptest::bool::ANY,
        ) {
            let mut p = if use_random { random } else { encode_calendar(&extended()) };
            for (at, v) in edits {
                if !p.is_empty() {
                    let i = at % p.len();
                    p[i] = v;
                }
            }
            if let Some(k) = cut {
                p.truncate(k % (p.len() + 1));
            }
            if let Ok(cal) = decode_calendar(&p) {
                proptest::prop_assert!(cal.validate().is_ok());
            }
        }
    }
}
