//! The data the FHIR API starts with: the built-in UK data set (`uk.json`, written
//! by `generate.py`: `Patient/1` is CCRI's example patient, Miss Bernie Kanfeld),
//! or every FHIR JSON file of a directory given with `--data`.
//!
//! A data file is a resource or a Bundle (collection, transaction, batch,
//! searchset: Synthea writes transactions). Entries without an id get the one their
//! `urn:uuid:` fullUrl carries, and references to such fullUrls are rewritten to
//! `Type/id`, so Synthea output loads as it is. Resource types the mock does not
//! serve are counted and skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fhir::definitions::R4;
use crate::fhir::validate::validate;

/// The resources of the built-in data set.
pub(crate) fn builtin() -> Vec<Value> {
    let bundle: Value =
        serde_json::from_str(include_str!("uk.json")).expect("the built-in seed is valid JSON");
    // Not validated here (a test does), so start-up compiles no schema.
    entries(bundle, Path::new("uk.json"))
        .expect("the built-in seed is a valid collection")
        .0
        .into_iter()
        .map(|(_, resource)| resource)
        .collect()
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

/// What `--data` loaded.
#[derive(Debug, Default)]
pub struct Loaded {
    pub resources: Vec<Value>,
    /// Resources of types the mock does not serve, by type.
    pub skipped: HashMap<String, usize>,
    /// Files refused (only with `lenient`; otherwise the first one is the error).
    pub errors: Vec<LoadError>,
}

/// Loads every `*.json` file of `dir`, in name order. Without `lenient` the first
/// bad file stops the load; with it, bad files are reported and skipped.
pub fn load_dir(dir: &Path, lenient: bool) -> Result<Loaded, LoadError> {
    let io_error = |e: std::io::Error| LoadError {
        file: dir.to_owned(),
        path: "$".into(),
        message: e.to_string(),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut loaded = Loaded::default();
    for file in files {
        match load_file(&file) {
            Ok((resources, skipped)) => {
                loaded.resources.extend(resources);
                for kind in skipped {
                    *loaded.skipped.entry(kind).or_default() += 1;
                }
            }
            Err(error) if lenient => loaded.errors.push(error),
            Err(error) => return Err(error),
        }
    }
    Ok(loaded)
}

fn load_file(file: &Path) -> Result<(Vec<Value>, Vec<String>), LoadError> {
    let text = std::fs::read_to_string(file).map_err(|e| LoadError {
        file: file.to_owned(),
        path: "$".into(),
        message: e.to_string(),
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| LoadError {
        file: file.to_owned(),
        path: format!("line {}, column {}", e.line(), e.column()),
        message: format!("invalid JSON: {e}"),
    })?;
    let (found, skipped) = entries(value, file)?;
    let mut resources = Vec::with_capacity(found.len());
    for (path, resource) in found {
        if let Err(invalid) = validate(&resource) {
            return Err(LoadError {
                file: file.to_owned(),
                path: invalid.path(&path),
                message: invalid.summary(),
            });
        }
        resources.push(resource);
    }
    Ok((resources, skipped))
}

/// The resources in one parsed file, each with its JSON path, and the types skipped.
type Entries = (Vec<(String, Value)>, Vec<String>);

fn entries(value: Value, file: &Path) -> Result<Entries, LoadError> {
    let error = |path: String, message: String| LoadError {
        file: file.to_owned(),
        path,
        message,
    };
    let kind = value.get("resourceType").and_then(Value::as_str).ok_or_else(|| {
        error(
            "$.resourceType".into(),
            "missing: the file must be a FHIR resource or Bundle".into(),
        )
    })?;
    let mut found: Vec<(String, Value)> = Vec::new();
    if kind == "Bundle" {
        let Some(Value::Array(items)) = value.get("entry") else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut urns: HashMap<String, String> = HashMap::new();
        for (index, item) in items.iter().enumerate() {
            let path = format!("$.entry[{index}].resource");
            let mut resource = item
                .get("resource")
                .cloned()
                .ok_or_else(|| error(path.clone(), "missing".into()))?;
            let kind = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| error(format!("{path}.resourceType"), "missing".into()))?;
            if let Some(uuid) = item
                .get("fullUrl")
                .and_then(Value::as_str)
                .and_then(|u| u.strip_prefix("urn:uuid:"))
            {
                if resource.get("id").is_none() {
                    resource["id"] = Value::String(uuid.to_owned());
                }
                let id = resource["id"].as_str().unwrap_or(uuid).to_owned();
                urns.insert(format!("urn:uuid:{uuid}"), format!("{kind}/{id}"));
            }
            found.push((path, resource));
        }
        for (_, resource) in &mut found {
            rewrite_references(resource, &urns);
        }
    } else {
        found.push(("$".into(), value));
    }
    let mut resources = Vec::new();
    let mut skipped = Vec::new();
    for (path, resource) in found {
        let kind = resource["resourceType"].as_str().unwrap_or_default().to_owned();
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| error(format!("{path}.id"), "missing".into()))?;
        if !crate::fhir::is_valid_id(id) {
            return Err(error(
                format!("{path}.id"),
                format!("{id:?} is not a valid FHIR id"),
            ));
        }
        if R4.is_type(&kind) {
            resources.push((path, resource));
        } else {
            skipped.push(kind);
        }
    }
    Ok((resources, skipped))
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
