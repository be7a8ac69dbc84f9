//! The parameters `_history` and `$everything` share: `_since`, `_count`, and
//! the paging state of the mock's own links. Each caller names the parameters
//! of its own (`$everything`'s `_type`); anything else is a 400 naming it.

use chrono::{DateTime, Utc};

use super::execute::Paging;
use super::{DEFAULT_COUNT, MAX_COUNT, OFFSET, SNAPSHOT, date};
use crate::fhir::outcome::Outcome;
use crate::fhir::store::{Snapshot, Version};

pub(super) struct Window {
    /// `_since`: only what changed at or after this instant.
    pub since: Option<DateTime<Utc>>,
    count: usize,
    offset: usize,
    snapshot: Option<u64>,
    /// The parameters repeated in the links (not the paging ones).
    echo: Vec<(String, String)>,
}

impl Window {
    /// Parses `query` for the interaction at `path` (`Patient/_history`).
    /// `own(name, value)` takes a parameter of the caller's (and says whether it
    /// did); `offered` names them all for the error.
    pub(super) fn parse(
        query: &[(String, String)],
        path: &str,
        offered: &str,
        mut own: impl FnMut(&str, &str) -> Result<bool, String>,
    ) -> Result<Window, Outcome> {
        let mut window = Window {
            since: None,
            count: DEFAULT_COUNT,
            offset: 0,
            snapshot: None,
            echo: Vec::new(),
        };
        for (name, value) in query {
            let bad = |why: String| Outcome::invalid(why).at(format!("{path}?{name}"));
            match name.as_str() {
                "_since" => {
                    let range = date::parse(value)
                        .ok_or_else(|| bad(format!("_since must be an instant, not {value:?}")))?;
                    window.since = DateTime::from_timestamp_millis(range.start);
                }
                "_count" => {
                    window.count =
                        value.parse().ok().filter(|c| *c <= MAX_COUNT).ok_or_else(|| {
                            bad(format!("_count must be a whole number from 0 to {MAX_COUNT}"))
                        })?;
                }
                OFFSET => {
                    window.offset = value
                        .parse()
                        .map_err(|_| bad(format!("{OFFSET} must be a number")))?;
                    continue;
                }
                SNAPSHOT => {
                    let snapshot = value
                        .parse()
                        .map_err(|_| bad(format!("{SNAPSHOT} must be a number")))?;
                    window.snapshot = Some(snapshot);
                    continue;
                }
                "_format" | "_pretty" => {}
                other => {
                    if !own(other, value).map_err(bad)? {
                        return Err(bad(format!(
                            "{path} takes {offered}; {other} is not supported here"
                        )));
                    }
                }
            }
            window.echo.push((name.clone(), value.clone()));
        }
        Ok(window)
    }

    /// The store sequence number the results are read at: the first page's, or
    /// now. One in the future is refused, as search refuses it.
    pub(super) fn snapshot(&self, store: &dyn Snapshot, path: &str) -> Result<u64, Outcome> {
        match self.snapshot {
            Some(snapshot) if snapshot > store.seq() => Err(Outcome::invalid(format!(
                "{SNAPSHOT}={snapshot} is in the future"
            ))
            .at(format!("{path}?{SNAPSHOT}"))),
            Some(snapshot) => Ok(snapshot),
            None => Ok(store.seq()),
        }
    }

    /// Whether `version` changed within `_since`.
    pub(super) fn changed(&self, version: &Version) -> bool {
        self.since.is_none_or(|since| version.last_updated >= since)
    }

    /// The paging of results read at `snapshot`, with links under `url`.
    pub(super) fn paging(&self, url: String, snapshot: u64) -> Paging<'_> {
        Paging {
            path: url,
            echo: &self.echo,
            snapshot,
            offset: self.offset,
            count: self.count,
        }
    }
}
