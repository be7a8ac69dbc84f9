//! The FHIR REST interactions an app uses, as [`FhirRequest`]s built from checked
//! parts. [`SmartClient::send`] sends every one of them, so each carries (and
//! refreshes) the token and only ever goes to the FHIR base.

use super::error::{Error, ErrorCode};
use super::platform::{Json, JsonValue, Method, Platform, Storage};
use super::session::SmartClient;

/// `[A-Z][A-Za-z]*`: a resource type can never smuggle a path or query into a URL.
fn resource_type<J>(kind: &str) -> Result<&str, Error<J>> {
    let mut chars = kind.chars();
    let valid =
        chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphabetic());
    if valid {
        Ok(kind)
    } else {
        Err(Error::invalid_options(format!(
            "`{kind}` is not a FHIR resource type"
        )))
    }
}

/// `[A-Za-z0-9\-.]{1,64}` (FHIR R4 §2.1.28 "id"; a versionId is one too).
fn logical_id<J>(id: &str) -> Result<&str, Error<J>> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(id)
    } else {
        Err(Error::invalid_options(format!("`{id}` is not a FHIR id")))
    }
}

/// `Type/id` of a resource the app hands in.
fn type_and_id<J: JsonValue>(resource: &J) -> Result<(String, Option<String>), Error<J>> {
    let kind = resource
        .member_string("resourceType")
        .ok_or_else(|| Error::invalid_options("the resource has no resourceType"))?;
    resource_type::<J>(&kind)?;
    Ok((kind, resource.member_string("id")))
}

/// The `next` link of a searchset Bundle.
pub fn next_link<J: JsonValue>(bundle: &J) -> Option<String> {
    let links = bundle.get("link")?.items()?;
    let next = links
        .iter()
        .find(|link| link.member_string("relation").as_deref() == Some("next"))?;
    next.member_string("url")
}

/// Which version a change is conditional on (`If-Match`, FHIR R4 §3.1.0.5.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum IfMatch {
    /// An update sends the `meta.versionId` of the resource it is given, so a stale
    /// copy gets a 412 instead of overwriting a newer version.
    #[default]
    ResourceVersion,
    Version(String),
    /// No precondition: last write wins.
    Never,
}

/// `Bundle.type` of a Bundle POSTed to the base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleKind {
    /// Entries succeed or fail one by one.
    Batch,
    /// All entries or none.
    Transaction,
}

impl BundleKind {
    fn as_str(self) -> &'static str {
        match self {
            BundleKind::Batch => "batch",
            BundleKind::Transaction => "transaction",
        }
    }
}

/// The resource of the launch context that [`SmartClient::context_read`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InContext {
    Patient,
    Encounter,
    /// The user: the verified id_token's `fhirUser`.
    User,
}

/// One request to the FHIR server, before the token is added.
#[derive(Debug)]
pub struct FhirRequest<S> {
    pub method: Method,
    /// A path relative to the FHIR base, or an absolute URL under it.
    pub target: String,
    pub body: Option<String>,
    /// The app's own headers; the client adds `Authorization`, and `Accept` and
    /// `Content-Type` unless given here.
    pub headers: Vec<(String, String)>,
    pub signal: Option<S>,
    /// A read or search answers with a resource: a success without one is an
    /// `invalid_response`, not a silent `null`.
    pub expects_body: bool,
}

impl<S> FhirRequest<S> {
    /// A request to `target` (relative to the base) as an app writes it.
    pub fn new(method: Method, target: impl Into<String>) -> Self {
        FhirRequest {
            method,
            target: target.into(),
            body: None,
            headers: Vec::new(),
            signal: None,
            expects_body: false,
        }
    }

    fn get<J>(target: String) -> Result<Self, Error<J>> {
        let mut request = Self::new(Method::Get, target);
        request.expects_body = true;
        Ok(request)
    }

    pub fn read<J>(kind: &str, id: &str) -> Result<Self, Error<J>> {
        Self::get(format!("{}/{}", resource_type(kind)?, logical_id(id)?))
    }

    pub fn vread<J>(kind: &str, id: &str, version: &str) -> Result<Self, Error<J>> {
        Self::get(format!(
            "{}/{}/_history/{}",
            resource_type(kind)?,
            logical_id(id)?,
            logical_id(version)?
        ))
    }

    /// A searchset. Parameters are encoded here; repeat a name to AND it.
    pub fn search<J>(kind: &str, params: &[(String, String)]) -> Result<Self, Error<J>> {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        Self::get(format!("{}?{query}", resource_type(kind)?))
    }

    /// The page a searchset's `next` link points at, if it has one.
    pub fn next_page<J: JsonValue>(bundle: &J) -> Option<Self> {
        Self::get::<J>(next_link(bundle)?).ok()
    }

    pub fn create<J: Json>(resource: &J) -> Result<Self, Error<J>> {
        let (kind, _) = type_and_id(resource)?;
        Self::new(Method::Post, kind).with_body(resource)
    }

    pub fn update<J: Json>(resource: &J, if_match: IfMatch) -> Result<Self, Error<J>> {
        let (kind, id) = type_and_id(resource)?;
        let id = id.ok_or_else(|| Error::invalid_options("an update needs the resource's id"))?;
        let version = match if_match {
            IfMatch::ResourceVersion => resource.get("meta").and_then(|m| m.member_string("versionId")),
            IfMatch::Version(version) => Some(version),
            IfMatch::Never => None,
        };
        Self::new(Method::Put, format!("{kind}/{}", logical_id(&id)?))
            .with_body(resource)?
            .if_match(version)
    }

    /// A JSON Patch (RFC 6902): `operations` is its array of operations.
    pub fn patch<J: Json>(kind: &str, id: &str, operations: &J, if_match: IfMatch) -> Result<Self, Error<J>> {
        if operations.items().is_none() {
            return Err(Error::invalid_options("a JSON Patch is an array of operations"));
        }
        let version = match if_match {
            IfMatch::Version(version) => Some(version),
            IfMatch::ResourceVersion | IfMatch::Never => None,
        };
        let mut request = Self::new(
            Method::Patch,
            format!("{}/{}", resource_type(kind)?, logical_id(id)?),
        )
        .with_body(operations)?
        .if_match(version)?;
        request
            .headers
            .push(("Content-Type".into(), "application/json-patch+json".into()));
        Ok(request)
    }

    pub fn delete<J>(kind: &str, id: &str) -> Result<Self, Error<J>> {
        Ok(Self::new(
            Method::Delete,
            format!("{}/{}", resource_type(kind)?, logical_id(id)?),
        ))
    }

    /// A batch or transaction: `entries` is the Bundle's `entry` array, or a whole
    /// Bundle of that type.
    pub fn bundle<J: Json>(kind: BundleKind, entries: &J) -> Result<Self, Error<J>> {
        let bundle = if entries.items().is_some() {
            J::object(vec![
                ("resourceType", Some(J::text("Bundle"))),
                ("type", Some(J::text(kind.as_str()))),
                ("entry", Some(entries.clone())),
            ])
        } else if entries.member_string("resourceType").as_deref() == Some("Bundle")
            && entries.member_string("type").as_deref() == Some(kind.as_str())
        {
            entries.clone()
        } else {
            return Err(Error::invalid_options(format!(
                "give the entries as an array, or a Bundle of type {}",
                kind.as_str()
            )));
        };
        let mut request = Self::new(Method::Post, "").with_body(&bundle)?;
        request.expects_body = true;
        Ok(request)
    }

    fn with_body<J: Json>(mut self, body: &J) -> Result<Self, Error<J>> {
        self.body = Some(body.to_text().map_err(Error::invalid_options)?);
        Ok(self)
    }

    fn if_match<J>(mut self, version: Option<String>) -> Result<Self, Error<J>> {
        if let Some(version) = version {
            let tag = format!("W/\"{}\"", logical_id(&version)?);
            self.headers.push(("If-Match".into(), tag));
        }
        Ok(self)
    }

    /// Adds the app's headers. The token is the client's to send.
    pub fn with_headers<J>(mut self, headers: Vec<(String, String)>) -> Result<Self, Error<J>> {
        if let Some((name, _)) = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            return Err(Error::invalid_options(format!(
                "headers: {name} is the client's to set"
            )));
        }
        // The app's value replaces a default one (an If-Match of its own, say).
        self.headers
            .retain(|(name, _)| !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)));
        self.headers.extend(headers);
        Ok(self)
    }

    pub(super) fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

impl<P: Platform + 'static, S: Storage + 'static> SmartClient<P, S> {
    /// The read of a resource in the launch context.
    pub fn context_read(&self, which: InContext) -> Result<FhirRequest<P::Signal>, Error<P::Json>> {
        let state = self.state();
        let missing = |code, message: &str| Error::new(code, message);
        match which {
            InContext::Patient => {
                let id = state
                    .context
                    .patient
                    .ok_or_else(|| missing(ErrorCode::NoPatient, "there is no patient in context"))?;
                FhirRequest::read("Patient", &id)
            }
            InContext::Encounter => {
                let id = state
                    .context
                    .encounter
                    .ok_or_else(|| missing(ErrorCode::NoEncounter, "there is no encounter in context"))?;
                FhirRequest::read("Encounter", &id)
            }
            InContext::User => {
                let fhir_user = state.fhir_user.ok_or_else(|| {
                    missing(
                        ErrorCode::NoUser,
                        "no verified fhirUser: ask for openid and fhirUser scopes",
                    )
                })?;
                FhirRequest::get(fhir_user)
            }
        }
    }
}
