//! SMART scopes: what an app asks for and what a token grants.
//!
//! A scope string is a space-separated list (RFC 6749 §3.3). SMART gives some of
//! its members a grammar (SMART App Launch 2.2, "Scopes and Launch Context"):
//!
//! ```text
//! patient/Observation.read                 v1: read | write | *
//! user/*.write
//! patient/Observation.rs                   v2: letters of c r u d s, in that order
//! patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory
//! openid fhirUser profile launch launch/patient launch/encounter offline_access online_access
//! ```
//!
//! Anything else that is a valid RFC 6749 scope token (`system/x` is not, `foo/bar` is)
//! is kept verbatim as [`Scope::Other`], because servers define their own scopes.
//! A string that *claims* SMART grammar (`patient/…`, `user/…`, `system/…`) but breaks
//! it is a [`ScopeError`], never silently widened or dropped.
//!
//! [`Scopes::permits`] is the one answer to "may this token do that?", called by the
//! mock's FHIR API before each request and by the client to explain a 403.

use std::fmt;
use std::str::FromStr;

/// Whose data a resource scope is about: the launch patient, anything the user may
/// see, or anything at all (backend services).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    Patient,
    User,
    System,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }

    fn parse(prefix: &str) -> Option<Self> {
        match prefix {
            "patient" => Some(Context::Patient),
            "user" => Some(Context::User),
            "system" => Some(Context::System),
            _ => None,
        }
    }
}

/// A FHIR RESTful interaction, as far as scopes care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interaction {
    Create,
    Read,
    Vread,
    History,
    Update,
    Delete,
    Search,
}

impl Interaction {
    /// The v2 permission letter that allows this interaction:
    /// `r` covers read, vread and history; `s` covers search.
    pub fn permission(self) -> Permissions {
        match self {
            Interaction::Create => Permissions::CREATE,
            Interaction::Read | Interaction::Vread | Interaction::History => Permissions::READ,
            Interaction::Update => Permissions::UPDATE,
            Interaction::Delete => Permissions::DELETE,
            Interaction::Search => Permissions::SEARCH,
        }
    }
}

/// A set of SMART v2 permission letters (`cruds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

impl Permissions {
    pub const CREATE: Self = Self(1);
    pub const READ: Self = Self(2);
    pub const UPDATE: Self = Self(4);
    pub const DELETE: Self = Self(8);
    pub const SEARCH: Self = Self(16);
    /// v1 `.read`.
    pub const V1_READ: Self = Self(2 | 16);
    /// v1 `.write`: create, update and delete, and never read.
    pub const V1_WRITE: Self = Self(1 | 4 | 8);
    /// v1 `.*` and v2 `.cruds`.
    pub const ALL: Self = Self(31);

    /// The letters in the order the grammar demands.
    const LETTERS: [(char, Permissions); 5] = [
        ('c', Self::CREATE),
        ('r', Self::READ),
        ('u', Self::UPDATE),
        ('d', Self::DELETE),
        ('s', Self::SEARCH),
    ];

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Parses v2 letters, which must be non-empty, known, unique and in `cruds` order.
    fn parse_v2(letters: &str) -> Result<Self, PermissionsError> {
        let mut bits = 0;
        let mut next = 0; // index into LETTERS the next letter may start at
        for ch in letters.chars() {
            let Some(index) = Self::LETTERS.iter().position(|(l, _)| *l == ch) else {
                return Err(PermissionsError::Unknown);
            };
            if index < next {
                return Err(PermissionsError::OutOfOrder);
            }
            bits |= Self::LETTERS[index].1.0;
            next = index + 1;
        }
        if bits == 0 {
            return Err(PermissionsError::Unknown);
        }
        Ok(Self(bits))
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (letter, bit) in Self::LETTERS {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

enum PermissionsError {
    Unknown,
    OutOfOrder,
}

/// How the permissions of a resource scope were written, kept so a scope prints
/// back exactly as it was granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Syntax {
    /// `.read`, `.write` or `.*` (SMART v1).
    V1,
    /// `.cruds` letters (SMART v2).
    V2,
}

/// The resource type a scope is about: one type or `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Any,
    Named(String),
}

impl ResourceType {
    pub fn matches(&self, resource_type: &str) -> bool {
        match self {
            ResourceType::Any => true,
            ResourceType::Named(name) => name == resource_type,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(ResourceType::Any);
        }
        let mut chars = text.chars();
        let valid =
            chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric());
        valid.then(|| ResourceType::Named(text.to_owned()))
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceType::Any => f.write_str("*"),
            ResourceType::Named(name) => f.write_str(name),
        }
    }
}

/// One `name=value` of a granular v2 scope. Kept exactly as written (SMART compares
/// it with the search parameters of a request, not a decoded form).
pub type Constraint = (String, String);

/// `context/Type.permissions[?constraints]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    pub context: Context,
    pub resource_type: ResourceType,
    pub permissions: Permissions,
    pub syntax: Syntax,
    /// Granular constraints (v2 only); empty means the whole type.
    pub constraints: Vec<Constraint>,
}

impl ResourceScope {
    /// A v2 scope without constraints, e.g. to name the scope a request lacked.
    pub fn v2(context: Context, resource_type: ResourceType, permissions: Permissions) -> Self {
        Self {
            context,
            resource_type,
            permissions,
            syntax: Syntax::V2,
            constraints: Vec::new(),
        }
    }

    /// The same grant written in v2 syntax (`.read` → `.rs`, `.write` → `.cud`, `.*` → `.cruds`).
    pub fn to_v2(&self) -> Self {
        Self {
            syntax: Syntax::V2,
            ..self.clone()
        }
    }

    /// Whether everything `other` grants is granted by `self` too: same context,
    /// a type at least as wide, a superset of permissions, and no constraint that
    /// `other` does not also carry.
    pub fn covers(&self, other: &ResourceScope) -> bool {
        self.context == other.context
            && match (&self.resource_type, &other.resource_type) {
                (ResourceType::Any, _) => true,
                (ResourceType::Named(mine), ResourceType::Named(theirs)) => mine == theirs,
                (ResourceType::Named(_), ResourceType::Any) => false,
            }
            && self.permissions.contains(other.permissions)
            && self.constraints.iter().all(|c| other.constraints.contains(c))
    }

    fn parse(scope: &str, context: Context, rest: &str) -> Result<Self, ScopeError> {
        let err = |kind| {
            Err(ScopeError {
                scope: scope.to_owned(),
                kind,
            })
        };
        let (main, query) = match rest.split_once('?') {
            Some((main, query)) => (main, Some(query)),
            None => (rest, None),
        };
        let Some((type_text, permission_text)) = main.split_once('.') else {
            return err(ScopeErrorKind::MissingPermissions);
        };
        let Some(resource_type) = ResourceType::parse(type_text) else {
            return err(ScopeErrorKind::InvalidResourceType);
        };
        let (permissions, syntax) = match permission_text {
            "read" => (Permissions::V1_READ, Syntax::V1),
            "write" => (Permissions::V1_WRITE, Syntax::V1),
            "*" => (Permissions::ALL, Syntax::V1),
            letters => match Permissions::parse_v2(letters) {
                Ok(permissions) => (permissions, Syntax::V2),
                Err(PermissionsError::Unknown) => return err(ScopeErrorKind::InvalidPermissions),
                Err(PermissionsError::OutOfOrder) => {
                    return err(ScopeErrorKind::PermissionsOutOfOrder);
                }
            },
        };
        let mut constraints = Vec::new();
        if let Some(query) = query {
            if syntax == Syntax::V1 {
                return err(ScopeErrorKind::ConstraintOnV1);
            }
            for pair in query.split('&') {
                match pair.split_once('=') {
                    Some((name, value)) if !name.is_empty() && !value.is_empty() => {
                        constraints.push((name.to_owned(), value.to_owned()))
                    }
                    _ => return err(ScopeErrorKind::InvalidConstraint),
                }
            }
        }
        Ok(Self {
            context,
            resource_type,
            permissions,
            syntax,
            constraints,
        })
    }
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.", self.context.as_str(), self.resource_type)?;
        match self.syntax {
            Syntax::V1 if self.permissions == Permissions::V1_READ => f.write_str("read")?,
            Syntax::V1 if self.permissions == Permissions::V1_WRITE => f.write_str("write")?,
            Syntax::V1 if self.permissions == Permissions::ALL => f.write_str("*")?,
            // Any other set (built in code, not parsed) has no v1 spelling.
            _ => write!(f, "{}", self.permissions)?,
        }
        for (index, (name, value)) in self.constraints.iter().enumerate() {
            let separator = if index == 0 { '?' } else { '&' };
            write!(f, "{separator}{name}={value}")?;
        }
        Ok(())
    }
}

/// One member of a scope string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    OpenId,
    FhirUser,
    Profile,
    Launch,
    LaunchPatient,
    LaunchEncounter,
    OfflineAccess,
    OnlineAccess,
    Resource(ResourceScope),
    /// A well-formed scope token SMART does not define, kept verbatim.
    Other(String),
}

impl Scope {
    /// Every scope SMART App Launch 2.2 and OpenID Connect name, as sent: all
    /// but resource scopes. Each parses to its own variant (a test checks it).
    pub const NAMED: [&'static str; 8] = [
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    ];
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(scope: &str) -> Result<Self, ScopeError> {
        let err = |kind| {
            Err(ScopeError {
                scope: scope.to_owned(),
                kind,
            })
        };
        if scope.is_empty() {
            return err(ScopeErrorKind::Empty);
        }
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        if let Some(bad) = scope
            .chars()
            .find(|&c| !matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E'))
        {
            return err(ScopeErrorKind::InvalidCharacter(bad));
        }
        Ok(match scope {
            "openid" => Scope::OpenId,
            "fhirUser" => Scope::FhirUser,
            "profile" => Scope::Profile,
            "launch" => Scope::Launch,
            "launch/patient" => Scope::LaunchPatient,
            "launch/encounter" => Scope::LaunchEncounter,
            "offline_access" => Scope::OfflineAccess,
            "online_access" => Scope::OnlineAccess,
            _ => match scope.split_once('/') {
                Some((prefix, rest)) => match Context::parse(prefix) {
                    Some(context) => Scope::Resource(ResourceScope::parse(scope, context, rest)?),
                    None => Scope::Other(scope.to_owned()),
                },
                None => Scope::Other(scope.to_owned()),
            },
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::OpenId => "openid",
            Scope::FhirUser => "fhirUser",
            Scope::Profile => "profile",
            Scope::Launch => "launch",
            Scope::LaunchPatient => "launch/patient",
            Scope::LaunchEncounter => "launch/encounter",
            Scope::OfflineAccess => "offline_access",
            Scope::OnlineAccess => "online_access",
            Scope::Resource(resource) => return resource.fmt(f),
            Scope::Other(other) => other,
        })
    }
}

/// Why a scope string was refused. `scope` is the offending member, as sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope `{scope}`: {kind}")]
pub struct ScopeError {
    pub scope: String,
    pub kind: ScopeErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeErrorKind {
    #[error("empty scope")]
    Empty,
    #[error("character U+{:04X} is not allowed in a scope (RFC 6749 §3.3)", u32::from(*.0))]
    InvalidCharacter(char),
    #[error("expected `Type.permissions` after the context, e.g. `patient/Observation.rs`")]
    MissingPermissions,
    #[error("the resource type must be `*` or a FHIR type name such as `Observation`")]
    InvalidResourceType,
    #[error("permissions must be `read`, `write`, `*` (v1) or letters of `cruds` (v2)")]
    InvalidPermissions,
    #[error("v2 permission letters must appear once each, in the order c r u d s")]
    PermissionsOutOfOrder,
    #[error("granular `?name=value` constraints need v2 permissions, e.g. `.rs?category=…`")]
    ConstraintOnV1,
    #[error("granular constraints must be `name=value` pairs joined by `&`")]
    InvalidConstraint,
}

/// The outcome of [`Scopes::permits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// No granted scope allows the interaction.
    Denied,
    /// Allowed on every resource of the type (within the context's compartment).
    Full,
    /// Allowed only on resources matching at least one of these constraint sets
    /// (granular v2 scopes); the server narrows results to them.
    Filtered(Vec<Vec<Constraint>>),
}

/// A space-separated scope string, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    /// The resource scopes, in order.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceScope> {
        self.0.iter().filter_map(|scope| match scope {
            Scope::Resource(resource) => Some(resource),
            _ => None,
        })
    }

    /// Whether `interaction` on `resource_type` is allowed by a scope of `context`.
    ///
    /// `search_params` are the request's search parameters: a granular scope whose
    /// every constraint appears among them grants [`Access::Full`] (the search is
    /// already narrowed), otherwise its constraints come back as [`Access::Filtered`].
    pub fn permits(
        &self,
        context: Context,
        interaction: Interaction,
        resource_type: &str,
        search_params: &[(&str, &str)],
    ) -> Access {
        let needed = interaction.permission();
        let mut filters = Vec::new();
        for scope in self.resources() {
            if scope.context != context
                || !scope.resource_type.matches(resource_type)
                || !scope.permissions.contains(needed)
            {
                continue;
            }
            let satisfied = scope
                .constraints
                .iter()
                .all(|(name, value)| search_params.contains(&(name.as_str(), value.as_str())));
            if satisfied {
                return Access::Full;
            }
            filters.push(scope.constraints.clone());
        }
        if filters.is_empty() {
            Access::Denied
        } else {
            Access::Filtered(filters)
        }
    }

    /// Whether every member of `self` is granted by `granted`: identical non-resource
    /// scopes, and resource scopes each covered by some granted one. A refresh or a
    /// token request may narrow a grant this way, never widen it.
    pub fn is_within(&self, granted: &Scopes) -> bool {
        self.0.iter().all(|scope| match scope {
            Scope::Resource(wanted) => granted.resources().any(|have| have.covers(wanted)),
            other => granted.contains(other),
        })
    }
}

impl Scopes {
    /// A `scope` member: a string of scopes.
    pub fn from_json(json: &impl crate::JsonValue) -> Result<Self, crate::DecodeError> {
        let text = json
            .as_string()
            .ok_or_else(|| crate::DecodeError("`scope` must be a string".to_owned()))?;
        text.parse()
            .map_err(|e| crate::DecodeError(format!("`scope`: {e}")))
    }
}

impl FromStr for Scopes {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Self, ScopeError> {
        text.split_ascii_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Scopes)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, scope) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            scope.fmt(f)?;
        }
        Ok(())
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Scopes travel as one space-separated string in JSON and forms.
impl serde::Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
