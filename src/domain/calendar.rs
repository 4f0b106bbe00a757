//! Working time: which hours count, and adding working hours to a moment.
//! All times are UTC milliseconds; the working day is 08:00–17:00.

/// Milliseconds per hour.
pub const HOUR: i64 = 3_600_000;
/// Milliseconds per day.
pub const DAY: i64 = 24 * HOUR;
const START: i64 = 8 * HOUR;
const END: i64 = 17 * HOUR;

/// Day of the week, Monday = 0 … Sunday = 6.
pub fn weekday(t: i64) -> u32 {
    // 1970-01-01 was a Thursday (3).
    ((t.div_euclid(DAY) + 3).rem_euclid(7)) as u32
}

/// Hour of the day, 0–23.
pub fn hour(t: i64) -> u32 {
    (t.rem_euclid(DAY) / HOUR) as u32
}

/// Which weekdays someone works: bit `d` set = works on weekday `d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkDays(pub u8);

impl WorkDays {
    /// Monday to Friday.
    pub const WEEKDAYS: WorkDays = WorkDays(0b0001_1111);

    fn works_on(self, t: i64) -> bool {
        self.0 & (1 << weekday(t)) != 0
    }

    /// The first working moment at or after `t`.
    pub fn next_working(self, t: i64) -> i64 {
        let mut t = t;
        for _ in 0..15 {
            let day = t.div_euclid(DAY) * DAY;
            let in_day = t - day;
            if self.works_on(t) && in_day < END {
                return day + in_day.max(START);
            }
            t = day + DAY;
        }
        t
    }

    /// The moment `hours` of working time after `t`.
    pub fn add_hours(self, t: i64, hours: f64) -> i64 {
        let mut left = (hours.max(0.0) * HOUR as f64) as i64;
        let mut t = self.next_working(t);
        loop {
            let day_end = t.div_euclid(DAY) * DAY + END;
            if left <= day_end - t {
                return t + left;
            }
            left -= day_end - t;
            t = self.next_working(day_end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-01-01 was a Monday.
    const MONDAY: i64 = 1_704_067_200_000;

    #[test]
    fn weekdays_and_hours() {
        assert_eq!(weekday(MONDAY), 0);
        assert_eq!(weekday(MONDAY + 5 * DAY), 5);
        assert_eq!(hour(MONDAY + 9 * HOUR + 5), 9);
    }

    #[test]
    fn work_within_a_day_ends_the_same_day() {
        let t = WorkDays::WEEKDAYS.add_hours(MONDAY + 9 * HOUR, 2.0);
        assert_eq!(t, MONDAY + 11 * HOUR);
    }

    #[test]
    fn work_past_closing_time_continues_next_morning() {
        let t = WorkDays::WEEKDAYS.add_hours(MONDAY + 16 * HOUR, 3.0);
        assert_eq!(t, MONDAY + DAY + 10 * HOUR);
    }

    #[test]
    fn friday_evening_work_waits_for_monday() {
        let friday_evening = MONDAY + 4 * DAY + 18 * HOUR;
        assert_eq!(
            WorkDays::WEEKDAYS.add_hours(friday_evening, 1.0),
            MONDAY + 7 * DAY + 9 * HOUR
        );
    }

    #[test]
    fn part_timers_skip_their_days_off() {
        let mon_wed = WorkDays(0b0000_0111);
        let wednesday_4pm = MONDAY + 2 * DAY + 16 * HOUR;
        assert_eq!(
            mon_wed.add_hours(wednesday_4pm, 2.0),
            MONDAY + 7 * DAY + 9 * HOUR
        );
    }
}
