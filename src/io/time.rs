//! Timestamps as event logs write them, and how to tell which way a column
//! writes them.

/// A way of writing a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TimeFormat {
    /// `2012-04-03T16:55:38`, `2012-04-03 16:55:38.123`, with or without a
    /// zone (`Z`, `+02:00`, `+0200`); a date alone is midnight.
    Iso,
    /// `03/04/2012 16:55[:38]` or `03-04-2012 …`: day first.
    DayFirst,
    /// `04/03/2012 16:55[:38]`: month first.
    MonthFirst,
    /// Seconds since 1970-01-01 UTC.
    EpochSeconds,
    /// Milliseconds since 1970-01-01 UTC.
    EpochMillis,
}

/// What [`detect`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detected {
    /// The format that reads every sample.
    pub format: TimeFormat,
    /// Day-first and month-first both read every sample: the user must choose.
    pub ambiguous: bool,
}

/// `YYYY-MM-DD` of a UTC moment.
pub fn date_of(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn valid(y: i64, m: i64, d: i64) -> Option<(i64, u32, u32)> {
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m as u32) as i64)
        .then_some((y, m as u32, d as u32))
}

/// `HH:MM[:SS[.fff]]` → ms into the day.
fn time_of_day(s: &str) -> Option<i64> {
    let mut parts = s.split(':');
    let h = num(parts.next()?)?;
    let m = num(parts.next()?)?;
    let (sec, ms) = match parts.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once(['.', ',']).unwrap_or((sec, ""));
            let frac_ms = if frac.is_empty() {
                0
            } else {
                let digits: String = frac.chars().take(3).collect();
                num(&digits)? * 10i64.pow(3 - digits.len() as u32)
            };
            (num(whole)?, frac_ms)
        }
    };
    if parts.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// Split a zone suffix off: `Z`, `+02:00`, `-0530`, `+02`. Returns the rest
/// and the offset in minutes, if there was one.
fn zone(s: &str) -> Option<(&str, Option<i64>)> {
    if let Some(rest) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return Some((rest, Some(0)));
    }
    // A sign after the time part (position > 10 keeps the date's dashes out).
    if let Some(pos) = s.rfind(['+', '-']).filter(|&p| p > 10) {
        let (rest, z) = s.split_at(pos);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
        let (h, m) = match digits.len() {
            2 => (num(&digits)?, 0),
            4 => (num(&digits[..2])?, num(&digits[2..])?),
            _ => return None,
        };
        return Some((rest, Some(sign * (h * 60 + m))));
    }
    Some((s, None))
}

/// Read `s` written in `format`; zone-less times are taken to be at
/// `tz_offset_min` minutes from UTC. Returns UTC milliseconds.
pub fn parse(s: &str, format: TimeFormat, tz_offset_min: i64) -> Option<i64> {
    let s = s.trim();
    match format {
        TimeFormat::EpochSeconds => {
            let v: f64 = s.parse().ok()?;
            v.is_finite().then(|| (v * 1000.0).round() as i64)
        }
        TimeFormat::EpochMillis => s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(|v| v.round() as i64),
        TimeFormat::Iso => {
            let (s, offset) = zone(s)?;
            let (date, time) = match s.split_once(['T', ' ']) {
                Some((d, t)) => (d, Some(t.trim())),
                None => (s, None),
            };
            let mut d = date.split('-');
            let (y, m, dd) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
            if d.next().is_some() || date.len() < 8 {
                return None;
            }
            let (y, m, dd) = valid(y, m, dd)?;
            let ms = match time {
                Some(t) if !t.is_empty() => time_of_day(t)?,
                _ => 0,
            };
            Some(
                days_from_civil(y, m, dd) * 86_400_000 + ms
                    - offset.unwrap_or(tz_offset_min) * 60_000,
            )
        }
        TimeFormat::DayFirst | TimeFormat::MonthFirst => {
            let (date, time) = match s.split_once([' ', 'T']) {
                Some((d, t)) => (d, Some(t.trim())),
                None => (s, None),
            };
            let parts: Vec<&str> = date.split(['/', '-', '.']).collect();
            if parts.len() != 3 || parts[2].len() != 4 {
                return None;
            }
            let (a, b, y) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
            let (d, m) = if format == TimeFormat::DayFirst {
                (a, b)
            } else {
                (b, a)
            };
            let (y, m, d) = valid(y, m, d)?;
            let ms = match time {
                Some(t) if !t.is_empty() => time_of_day(t)?,
                _ => 0,
            };
            Some(days_from_civil(y, m, d) * 86_400_000 + ms - tz_offset_min * 60_000)
        }
    }
}

/// The format that reads every non-empty sample, preferring ISO; epoch
/// numbers are told apart by size (ms values are ≥ 10¹¹).
pub fn detect<'a>(samples: impl IntoIterator<Item = &'a str>) -> Option<Detected> {
    let samples: Vec<&str> = samples
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if samples.is_empty() {
        return None;
    }
    let all = |f: TimeFormat| samples.iter().all(|s| parse(s, f, 0).is_some());
    if all(TimeFormat::Iso) {
        return Some(Detected {
            format: TimeFormat::Iso,
            ambiguous: false,
        });
    }
    let (day, month) = (all(TimeFormat::DayFirst), all(TimeFormat::MonthFirst));
    if day || month {
        return Some(Detected {
            format: if day {
                TimeFormat::DayFirst
            } else {
                TimeFormat::MonthFirst
            },
            ambiguous: day && month,
        });
    }
    if samples.iter().all(|s| s.parse::<f64>().is_ok()) {
        let big = samples
            .iter()
            .filter_map(|s| s.parse::<f64>().ok())
            .any(|v| v.abs() >= 1e11);
        return Some(Detected {
            format: if big {
                TimeFormat::EpochMillis
            } else {
                TimeFormat::EpochSeconds
            },
            ambiguous: false,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_333_472_138_000; // 2012-04-03 16:55:38 UTC

    #[test]
    fn iso_in_its_variants() {
        for s in [
            "2012-04-03T16:55:38",
            "2012-04-03 16:55:38",
            "2012-04-03T16:55:38Z",
            "2012-04-03T18:55:38+02:00",
            "2012-04-03T18:55:38+0200",
            "2012-04-03T11:55:38-05:00",
        ] {
            assert_eq!(parse(s, TimeFormat::Iso, 0), Some(T), "{s}");
        }
        assert_eq!(
            parse("2012-04-03T16:55:38.250", TimeFormat::Iso, 0),
            Some(T + 250)
        );
        assert_eq!(
            parse("2012-04-03", TimeFormat::Iso, 0),
            Some(T - (16 * 3600 + 55 * 60 + 38) * 1000)
        );
        assert_eq!(
            parse("2012-04-03 18:55:38", TimeFormat::Iso, 120),
            Some(T),
            "zone setting applies to zone-less times"
        );
        assert_eq!(
            parse("2012-02-30 10:00:00", TimeFormat::Iso, 0),
            None,
            "no 30 February"
        );
    }

    #[test]
    fn day_first_and_month_first_and_epochs() {
        assert_eq!(
            parse("03/04/2012 16:55:38", TimeFormat::DayFirst, 0),
            Some(T)
        );
        assert_eq!(
            parse("04/03/2012 16:55:38", TimeFormat::MonthFirst, 0),
            Some(T)
        );
        assert_eq!(
            parse("03.04.2012 16:55", TimeFormat::DayFirst, 0),
            Some(T - 38_000)
        );
        assert_eq!(parse("1333472138", TimeFormat::EpochSeconds, 0), Some(T));
        assert_eq!(parse("1333472138000", TimeFormat::EpochMillis, 0), Some(T));
    }

    #[test]
    fn detection_prefers_iso_and_flags_ambiguity() {
        assert_eq!(
            detect(["2012-04-03 16:55:38"]).unwrap().format,
            TimeFormat::Iso
        );
        let d = detect(["03/04/2012 10:00", "05/06/2012 11:00"]).unwrap();
        assert!(d.ambiguous, "both readings work: the user must choose");
        let d = detect(["03/04/2012 10:00", "25/06/2012 11:00"]).unwrap();
        assert_eq!(
            d,
            Detected {
                format: TimeFormat::DayFirst,
                ambiguous: false
            }
        );
        let d = detect(["12/25/2012 10:00"]).unwrap();
        assert_eq!(d.format, TimeFormat::MonthFirst);
        assert_eq!(
            detect(["1333472138000"]).unwrap().format,
            TimeFormat::EpochMillis
        );
        assert_eq!(
            detect(["1333472138"]).unwrap().format,
            TimeFormat::EpochSeconds
        );
        assert_eq!(detect(["yesterday"]), None);
    }
}
