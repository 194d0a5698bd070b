//! Calendar arithmetic for the timestamps XenAPI carries. Pure: callers read the clock.

/// A UTC instant broken into calendar fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1-12.
    pub month: i64,
    /// Day of the month, 1-31.
    pub day: i64,
    /// Hour, 0-23.
    pub hour: i64,
    /// Minute, 0-59.
    pub minute: i64,
    /// Second, 0-59.
    pub second: i64,
}

impl Civil {
    /// The calendar fields of `secs` seconds after the Unix epoch (proleptic Gregorian,
    /// Howard Hinnant's civil-from-days).
    pub fn from_unix(secs: i64) -> Civil {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// XenAPI's datetime form, `YYYYMMDDTHH:MM:SSZ`.
    pub fn xenapi(&self) -> String {
        let Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
        } = *self;
        format!("{year:04}{month:02}{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    }

    /// RFC 3339, `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339(&self) -> String {
        let Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
        } = *self;
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::Civil;

    #[test]
    fn known_instants() {
        assert_eq!(Civil::from_unix(0).xenapi(), "19700101T00:00:00Z");
        assert_eq!(
            Civil::from_unix(1_704_110_400).xenapi(),
            "20240101T12:00:00Z"
        );
        assert_eq!(
            Civil::from_unix(951_782_400).rfc3339(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(Civil::from_unix(-1).rfc3339(), "1969-12-31T23:59:59Z");
    }
}
