//! FHIR dates as time ranges, the way search compares them (FHIR R4 §3.1.1.4.2):
//! `2024` is the whole year, `2024-05-02` the whole day, a Period its span.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

/// `[start, end)` in milliseconds since the epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Range {
    pub start: i64,
    pub end: i64,
}

/// A search prefix (§3.1.1.4.1.1), shared by dates, numbers and quantities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    /// Starts after.
    Sa,
    /// Ends before.
    Eb,
    /// Approximately: within 10 % of the distance between the value and now.
    Ap,
}

impl Prefix {
    /// Splits a prefix off a search value; no prefix means `eq`.
    pub(crate) fn split(value: &str) -> (Prefix, &str) {
        let prefix = match value.get(..2) {
            Some("eq") => Prefix::Eq,
            Some("ne") => Prefix::Ne,
            Some("gt") => Prefix::Gt,
            Some("lt") => Prefix::Lt,
            Some("ge") => Prefix::Ge,
            Some("le") => Prefix::Le,
            Some("sa") => Prefix::Sa,
            Some("eb") => Prefix::Eb,
            Some("ap") => Prefix::Ap,
            _ => return (Prefix::Eq, value),
        };
        (prefix, &value[2..])
    }

    /// Whether a resource's `target` range matches the search range `search`.
    pub(crate) fn matches(self, search: Range, target: Range) -> bool {
        let contained = search.start <= target.start && target.end <= search.end;
        match self {
            Prefix::Eq => contained,
            Prefix::Ne => !contained,
            Prefix::Gt => target.end > search.end,
            Prefix::Lt => target.start < search.start,
            Prefix::Ge => target.end > search.end || contained,
            Prefix::Le => target.start < search.start || contained,
            Prefix::Sa => target.start >= search.end,
            Prefix::Eb => target.end <= search.start,
            Prefix::Ap => {
                let now = chrono::Utc::now().timestamp_millis();
                let slack = (now - search.start).abs() / 10;
                target.start < search.end.saturating_add(slack)
                    && target.end > search.start.saturating_sub(slack)
            }
        }
    }
}

/// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a dateTime/instant into the range it covers.
pub(crate) fn parse(text: &str) -> Option<Range> {
    let day_ms = |date: NaiveDate| date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis());
    match text.len() {
        4 => {
            let year: i32 = text.parse().ok()?;
            Some(Range {
                start: day_ms(NaiveDate::from_ymd_opt(year, 1, 1)?)?,
                end: day_ms(NaiveDate::from_ymd_opt(year + 1, 1, 1)?)?,
            })
        }
        7 => {
            let (year, month) = text.split_once('-')?;
            let (year, month): (i32, u32) = (year.parse().ok()?, month.parse().ok()?);
            let next = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            Some(Range {
                start: day_ms(NaiveDate::from_ymd_opt(year, month, 1)?)?,
                end: day_ms(NaiveDate::from_ymd_opt(next.0, next.1, 1)?)?,
            })
        }
        10 => {
            let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
            Some(Range {
                start: day_ms(date)?,
                end: day_ms(date.succ_opt()?)?,
            })
        }
        _ => parse_date_time(text),
    }
}

/// A dateTime to the second (or minute), with a zone or — as FHIR allows in search — without.
fn parse_date_time(text: &str) -> Option<Range> {
    let (instant, precision_ms) = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        (t.timestamp_millis(), if text.contains('.') { 1 } else { 1000 })
    } else if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        (t.and_utc().timestamp_millis(), 1000)
    } else if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M") {
        (t.and_utc().timestamp_millis(), 60_000)
    } else {
        // hh:mm with a zone: add the seconds RFC 3339 wants.
        let (clock, zone) = text.split_at(text.rfind(['Z', '+', '-']).filter(|&i| i > 10)?);
        let t = DateTime::parse_from_rfc3339(&format!("{clock}:00{zone}")).ok()?;
        (t.timestamp_millis(), 60_000)
    };
    Some(Range {
        start: instant,
        end: instant + precision_ms,
    })
}

/// The range of an element: a date/dateTime/instant string or a Period.
pub(crate) fn of_element(value: &Value) -> Option<Range> {
    match value {
        Value::String(text) => parse(text),
        Value::Object(period) => {
            let start = period
                .get("start")
                .and_then(Value::as_str)
                .and_then(parse)
                .map_or(i64::MIN, |r| r.start);
            let end = period
                .get("end")
                .and_then(Value::as_str)
                .and_then(parse)
                .map_or(i64::MAX, |r| r.end);
            (start != i64::MIN || end != i64::MAX).then_some(Range { start, end })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates_cover_their_whole_span() {
        let year = parse("2024").unwrap();
        let month = parse("2024-02").unwrap();
        let day = parse("2024-02-29").unwrap();
        assert!(year.start <= month.start && month.end <= year.end);
        assert_eq!(month.end - month.start, 29 * 86_400_000);
        assert_eq!(day.end - day.start, 86_400_000);
        assert_eq!(parse("2024-12").unwrap().end, parse("2025").unwrap().start);
        let instant = parse("2024-02-29T10:00:00+01:00").unwrap();
        assert_eq!(instant.start, parse("2024-02-29T09:00:00Z").unwrap().start);
        assert_eq!(parse("2024-02-29T09:00Z").unwrap().start, instant.start);
        assert_eq!(parse("2024-02-29T09:00").unwrap().start, instant.start);
        assert!(parse("2024-13").is_none() && parse("yesterday").is_none() && parse("2024-02-30").is_none());
    }

    #[test]
    fn prefixes() {
        let search = parse("2024-05").unwrap();
        let inside = parse("2024-05-02T09:15:00Z").unwrap();
        let before = parse("2024-04-30").unwrap();
        let after = parse("2024-06-01").unwrap();
        assert!(Prefix::Eq.matches(search, inside) && !Prefix::Eq.matches(search, before));
        assert!(Prefix::Ne.matches(search, before) && !Prefix::Ne.matches(search, inside));
        assert!(Prefix::Gt.matches(search, after) && !Prefix::Gt.matches(search, inside));
        assert!(Prefix::Lt.matches(search, before) && !Prefix::Lt.matches(search, inside));
        assert!(Prefix::Ge.matches(search, inside) && Prefix::Ge.matches(search, after));
        assert!(Prefix::Le.matches(search, inside) && Prefix::Le.matches(search, before));
        assert!(!Prefix::Ge.matches(search, before) && !Prefix::Le.matches(search, after));
        assert!(Prefix::Sa.matches(search, after) && !Prefix::Sa.matches(search, inside));
        assert!(Prefix::Eb.matches(search, before) && !Prefix::Eb.matches(search, inside));
        assert!(
            Prefix::Ap.matches(search, inside) && Prefix::Ap.matches(search, parse("2024-06-01").unwrap())
        );
        assert!(!Prefix::Ap.matches(search, parse("2020").unwrap()));
        assert_eq!(Prefix::split("ge2024"), (Prefix::Ge, "2024"));
        assert_eq!(Prefix::split("2024"), (Prefix::Eq, "2024"));
    }
}
