//! The data the FHIR API starts with: the built-in UK data set (`uk.json`, written
//! by `generate.py`: `Patient/1` is CCRI's example patient, Miss Bernie Kanfeld),
//! or every FHIR JSON file of a directory given with `--data`.
//!
//! A data file is a resource or a Bundle (collection, transaction, batch,
//! searchset: Synthea writes transactions). Entries without an id get the one their
//! `urn:uuid:` fullUrl carries, and references to such fullUrls are rewritten to
//! `Type/id`, so Synthea output loads as it is. Resource types the mock does not
//! serve are counted and skipped.
//!
//! A Bundle is read an entry at a time: a first pass reads only each entry's
//! `fullUrl`, type and id (for the `urn:uuid:` references), a second parses,
//! checks and stores one resource, then the next. So a file's resources are
//! never all parsed at once, and the few kilobytes of JSON tree each one
//! needs are freed for the next instead of fragmenting the heap the store lives in.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::fhir::definitions::R4;
use crate::fhir::store::Record;
use crate::fhir::validate::validate;

/// The resources of the built-in data set.
pub(crate) fn builtin() -> Vec<Record> {
    // Not validated here (a test does), so start-up compiles no schema.
    read(
        include_str!("uk.json"),
        Path::new("uk.json"),
        Utc::now(),
        Check::Trusted,
    )
    .expect("the built-in seed is a valid collection")
    .0
}

/// A file that could not be loaded: which one, where in it, and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct LoadError {
    pub file: PathBuf,
    /// A JSON path such as `$.entry[3].resource.id`, or a line/column for syntax errors.
    pub path: String,
    pub message: String,
}

/// `--data`: a directory of FHIR JSON files (`*.json`), read when the store takes
/// them in — not at all when the store already holds resources. Without
/// `lenient` the first bad file (in name order) stops the load and nothing of it
/// is kept; with it, bad files are reported and skipped.
#[derive(Clone, Debug)]
pub struct DataDir {
    pub dir: PathBuf,
    pub lenient: bool,
}

/// What `--data` loaded.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Resources stored.
    pub count: usize,
    /// Resources of types the mock does not serve, by type.
    pub skipped: HashMap<String, usize>,
    /// Files refused (only with `lenient`; otherwise the first one is the error).
    pub errors: Vec<LoadError>,
}

/// Every record of `data`, at once, and what loading them said: to look at
/// before serving them.
pub fn load_dir(data: &DataDir) -> Result<(Vec<Record>, Loaded), LoadError> {
    let mut records = Vec::new();
    let loaded = stream_dir(data, &mut |batch| records.extend(batch))?;
    Ok((records, loaded))
}

/// Hands the records of `data`'s files, in file-name order, to `take`: a few
/// files at a time are parsed, validated and indexed on every core while `take`
/// stores the few before. So loading overlaps storing, and holds only a few
/// files' records at once, whatever the size of the directory.
pub(crate) fn stream_dir(data: &DataDir, take: &mut dyn FnMut(Vec<Record>)) -> Result<Loaded, LoadError> {
    let io_error = |e: std::io::Error| LoadError {
        file: data.dir.clone(),
        path: "$".into(),
        message: e.to_string(),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data.dir)
        .map_err(io_error)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let now = Utc::now();
    // A pool of our own, not rayon's global one: its threads end with the load,
    // and with them the allocator's per-thread caches of the parsed JSON.
    let pool = rayon::ThreadPoolBuilder::new().build().ok();
    let group = pool.as_ref().map_or(1, |pool| 2 * pool.current_num_threads());
    let mut loaded = Loaded::default();
    std::thread::scope(|scope| {
        // One group waits while the next is read: enough to keep both sides busy.
        let (send, receive) = std::sync::mpsc::sync_channel(1);
        let files = &files;
        scope.spawn(move || {
            for group in files.chunks(group) {
                let read = |file: &PathBuf| load_file(file, now);
                let results: Vec<_> = match &pool {
                    Some(pool) => pool.install(|| group.par_iter().map(read).collect()),
                    None => group.iter().map(read).collect(),
                };
                // Gone when a bad file stopped the load.
                if send.send(results).is_err() {
                    return;
                }
            }
        });
        for results in receive {
            for result in results {
                match result {
                    Ok((records, skipped)) => {
                        loaded.count += records.len();
                        take(records);
                        for kind in skipped {
                            *loaded.skipped.entry(kind).or_default() += 1;
                        }
                    }
                    Err(error) if data.lenient => loaded.errors.push(error),
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(loaded)
    })
}

fn load_file(file: &Path, now: DateTime<Utc>) -> Result<(Vec<Record>, Vec<String>), LoadError> {
    let text = std::fs::read_to_string(file).map_err(|e| LoadError {
        file: file.to_owned(),
        path: "$".into(),
        message: e.to_string(),
    })?;
    read(&text, file, now, Check::Validate)
}

/// Whether a file's resources are checked against the R4 schema.
#[derive(Clone, Copy, PartialEq)]
enum Check {
    Validate,
    /// The built-in data set, checked by a test instead.
    Trusted,
}

/// The records of one file's text, and the types it skipped.
fn read(
    text: &str,
    file: &Path,
    now: DateTime<Utc>,
    check: Check,
) -> Result<(Vec<Record>, Vec<String>), LoadError> {
    let mut reader = Reader {
        file,
        now,
        check,
        urns: HashMap::new(),
        records: Vec::new(),
        skipped: Vec::new(),
    };
    let syntax = |e: serde_json::Error| LoadError {
        file: file.to_owned(),
        path: format!("line {}, column {}", e.line(), e.column()),
        message: format!("invalid JSON: {e}"),
    };
    // The outline reads arrays as structs too: only an object can be a Bundle.
    let outline = match text.trim_start().starts_with('{') {
        true => serde_json::from_str::<Outline>(text).ok(),
        false => None,
    };
    match outline {
        Some(outline) if outline.resource_type.as_deref() == Some("Bundle") => {
            reader.urns = outline.urns();
            let mut failure = None;
            let mut each = |index: usize, entry: Value| {
                reader.entry(index, entry).map_err(|error| failure = Some(error))
            };
            let streamed =
                (&mut serde_json::Deserializer::from_str(text)).deserialize_map(BundleEntries(&mut each));
            if let Some(error) = failure {
                return Err(error);
            }
            streamed.map_err(syntax)?;
        }
        _ => {
            let mut value: Value = serde_json::from_str(text).map_err(syntax)?;
            match value.get("resourceType").and_then(Value::as_str) {
                None => {
                    return Err(reader.error(
                        "$.resourceType".into(),
                        "missing: the file must be a FHIR resource or Bundle".into(),
                    ));
                }
                // A Bundle the outline could not read (an entry that is not an
                // object, a fullUrl that is not text, a repeated key): read whole.
                Some("Bundle") => {
                    if let Some(Value::Array(entries)) = value.get_mut("entry").map(Value::take) {
                        reader.urns = entries
                            .iter()
                            .filter_map(|entry| {
                                let text = |pointer| entry.pointer(pointer).and_then(Value::as_str);
                                urn(
                                    text("/fullUrl"),
                                    text("/resource/resourceType"),
                                    text("/resource/id"),
                                )
                            })
                            .collect();
                        for (index, entry) in entries.into_iter().enumerate() {
                            reader.entry(index, entry)?;
                        }
                    }
                }
                Some(_) => reader.resource("$".into(), value)?,
            }
        }
    }
    Ok((reader.records, reader.skipped))
}

/// What the first pass over a Bundle reads: each entry's `fullUrl`, type and id.
#[derive(Deserialize)]
struct Outline {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(default)]
    entry: Vec<OutlineEntry>,
}

#[derive(Deserialize)]
struct OutlineEntry {
    #[serde(rename = "fullUrl")]
    full_url: Option<String>,
    resource: Option<OutlineResource>,
}

#[derive(Deserialize)]
struct OutlineResource {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    id: Option<String>,
}

impl Outline {
    /// `urn:uuid:…` → `Type/id`, for each entry that has both a uuid fullUrl and a type.
    fn urns(&self) -> HashMap<String, String> {
        self.entry
            .iter()
            .filter_map(|entry| {
                let resource = entry.resource.as_ref()?;
                urn(
                    entry.full_url.as_deref(),
                    resource.resource_type.as_deref(),
                    resource.id.as_deref(),
                )
            })
            .collect()
    }
}

/// `urn:uuid:…` → `Type/id` for an entry with a uuid `fullUrl` and a type: the id the
/// resource has, else the uuid.
fn urn(full_url: Option<&str>, kind: Option<&str>, id: Option<&str>) -> Option<(String, String)> {
    let full_url = full_url?;
    let uuid = full_url.strip_prefix("urn:uuid:")?;
    Some((full_url.to_owned(), format!("{}/{}", kind?, id.unwrap_or(uuid))))
}

/// The second pass over a Bundle: hands each element of its `entry` array, parsed
/// alone, to a function, and skips every other member.
struct BundleEntries<'f, F>(&'f mut F);

impl<'de, F: FnMut(usize, Value) -> Result<(), ()>> Visitor<'de> for BundleEntries<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Bundle")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "entry" {
                map.next_value_seed(EachEntry(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct EachEntry<'f, F>(&'f mut F);

impl<'de, F: FnMut(usize, Value) -> Result<(), ()>> DeserializeSeed<'de> for EachEntry<'_, F> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(usize, Value) -> Result<(), ()>> Visitor<'de> for EachEntry<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(entry) = entries.next_element::<Value>()? {
            (self.0)(index, entry).map_err(|()| de::Error::custom("entry refused"))?;
            index += 1;
        }
        Ok(())
    }
}

/// One file's resources as they are read.
struct Reader<'a> {
    file: &'a Path,
    now: DateTime<Utc>,
    check: Check,
    urns: HashMap<String, String>,
    records: Vec<Record>,
    skipped: Vec<String>,
}

impl Reader<'_> {
    fn error(&self, path: String, message: String) -> LoadError {
        LoadError {
            file: self.file.to_owned(),
            path,
            message,
        }
    }

    /// Entry `index` of a Bundle: its resource, given the id its `urn:uuid:`
    /// fullUrl carries if it has none, with references to such fullUrls rewritten.
    fn entry(&mut self, index: usize, mut entry: Value) -> Result<(), LoadError> {
        let path = format!("$.entry[{index}].resource");
        let mut resource = entry
            .get_mut("resource")
            .map(Value::take)
            .ok_or_else(|| self.error(path.clone(), "missing".into()))?;
        if resource.get("resourceType").and_then(Value::as_str).is_none() {
            return Err(self.error(format!("{path}.resourceType"), "missing".into()));
        }
        if let Some(uuid) = entry
            .get("fullUrl")
            .and_then(Value::as_str)
            .and_then(|u| u.strip_prefix("urn:uuid:"))
            && resource.get("id").is_none()
        {
            resource["id"] = Value::String(uuid.to_owned());
        }
        if !self.urns.is_empty() {
            rewrite_references(&mut resource, &self.urns);
        }
        self.resource(path, resource)
    }

    /// A resource at `path`: refused, skipped or stored.
    fn resource(&mut self, path: String, resource: Value) -> Result<(), LoadError> {
        let kind = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .ok_or_else(|| self.error(format!("{path}.resourceType"), "missing".into()))?;
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| self.error(format!("{path}.id"), "missing".into()))?;
        if !crate::fhir::is_valid_id(id) {
            return Err(self.error(format!("{path}.id"), format!("{id:?} is not a valid FHIR id")));
        }
        if !R4.is_type(kind) {
            self.skipped.push(kind.to_owned());
            return Ok(());
        }
        if self.check == Check::Validate
            && let Err(invalid) = validate(&resource)
        {
            return Err(self.error(invalid.path(&path), invalid.summary()));
        }
        let (kind, id) = (kind.to_owned(), id.to_owned());
        self.records
            .push(Record::new((&kind, &id), resource, 1, self.now));
        Ok(())
    }
}

fn rewrite_references(value: &mut Value, urns: &HashMap<String, String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                match child {
                    Value::String(text) if key == "reference" => {
                        if let Some(local) = urns.get(text.as_str()) {
                            *text = local.clone();
                        }
                    }
                    _ => rewrite_references(child, urns),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_references(item, urns)),
        _ => {}
    }
}
