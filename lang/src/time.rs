//! RFC 3339 instants for rule windows. Small enough to write out rather than pull a date crate
//! into the .wasm: only the full `date-time` form with `Z` or a numeric offset is accepted.

/// Unix nanoseconds, the clock every rule window is compared on; `None` before 1970 or after
/// 2262 (past `i64`), where no window can be decided.
#[inline]
pub fn unix_nanos(t: std::time::SystemTime) -> Option<i64> {
    let since = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_nanos()).ok()
}

/// Unix time in nanoseconds of an RFC 3339 `date-time`, e.g. `2026-12-01T09:00:00+01:00`.
pub fn parse_rfc3339(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err("expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset like +01:00");
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, &'static str> {
        let part = s.get(range).ok_or("not ASCII")?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err("expected digits");
        }
        part.parse::<i64>().map_err(|_| "expected digits")
    };
    let sep = |i: usize, ok: &[u8]| -> Result<(), &'static str> {
        if ok.contains(&b[i]) {
            Ok(())
        } else {
            Err("expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset like +01:00")
        }
    };
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt ")?;
    sep(13, b":")?;
    sep(16, b":")?;
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day");
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return Err("expected digits after `.`");
        }
        for (k, d) in digits.bytes().take(9).enumerate() {
            nanos += i64::from(d - b'0') * 10i64.pow(8 - k as u32);
        }
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err("no such offset");
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return Err("expected Z or an offset like +01:00 at the end"),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_secs;
    // Instants beyond i64 nanoseconds (before 1678, after 2262) saturate: no clock reaches them.
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2026-11-26T15:58:14Z"),
            Ok(1_795_708_694 * 1_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-26T16:58:14.5+01:00"),
            Ok(1_795_708_694 * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00-00:30"),
            Ok(951_784_200 * 1_000_000_000)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rejects_malformed() {
        for bad in [
            "2026-11-26",
            "2026-11-26T15:58:14",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-26T25:00:00Z",
            "2026-11-26T15:58:14+0100",
            "2026-11-26T15:58:14.Z",
            "2026-11-26T15:58:14Zjunk",
            "２０２６-11-26T15:58:14Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
