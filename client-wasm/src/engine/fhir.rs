//! The FHIR REST interactions an app uses, as URLs built from checked parts, sent
//! through [`SmartClient::request`] so every one carries (and refreshes) the token.

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

/// `[A-Za-z0-9\-.]{1,64}` (FHIR R4 §2.1.28 "id").
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

/// The `next` link of a searchset Bundle.
pub fn next_link<J: JsonValue>(bundle: &J) -> Option<String> {
    let links = bundle.get("link")?.items()?;
    let next = links
        .iter()
        .find(|link| link.member_string("relation").as_deref() == Some("next"))?;
    next.member_string("url")
}

impl<P: Platform + 'static, S: Storage + 'static> SmartClient<P, S> {
    async fn expect_body(
        &self,
        method: Method,
        target: &str,
        body: Option<String>,
    ) -> Result<P::Json, Error<P::Json>> {
        self.request(method, target, body)
            .await?
            .ok_or_else(|| Error::invalid_response("the server sent no JSON body"))
    }

    pub async fn read(&self, kind: &str, id: &str) -> Result<P::Json, Error<P::Json>> {
        let path = format!("{}/{}", resource_type(kind)?, logical_id(id)?);
        self.expect_body(Method::Get, &path, None).await
    }

    pub async fn vread(&self, kind: &str, id: &str, version: &str) -> Result<P::Json, Error<P::Json>> {
        let path = format!(
            "{}/{}/_history/{}",
            resource_type(kind)?,
            logical_id(id)?,
            logical_id(version)?
        );
        self.expect_body(Method::Get, &path, None).await
    }

    /// A searchset Bundle. Parameters are encoded here; repeat a name to AND it.
    pub async fn search(&self, kind: &str, params: &[(String, String)]) -> Result<P::Json, Error<P::Json>> {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let path = format!("{}?{query}", resource_type(kind)?);
        self.expect_body(Method::Get, &path, None).await
    }

    /// The page a `next` link points at (only ever on this FHIR server).
    pub async fn fetch_page(&self, url: &str) -> Result<P::Json, Error<P::Json>> {
        self.expect_body(Method::Get, url, None).await
    }

    pub async fn create(&self, resource: &P::Json) -> Result<Option<P::Json>, Error<P::Json>> {
        let kind = resource
            .member_string("resourceType")
            .ok_or_else(|| Error::invalid_options("the resource has no resourceType"))?;
        let body = resource.to_text().map_err(Error::invalid_options)?;
        self.request(Method::Post, resource_type(&kind)?, Some(body))
            .await
    }

    pub async fn update(&self, resource: &P::Json) -> Result<Option<P::Json>, Error<P::Json>> {
        let kind = resource
            .member_string("resourceType")
            .ok_or_else(|| Error::invalid_options("the resource has no resourceType"))?;
        let id = resource
            .member_string("id")
            .ok_or_else(|| Error::invalid_options("an update needs the resource's id"))?;
        let path = format!("{}/{}", resource_type(&kind)?, logical_id(&id)?);
        let body = resource.to_text().map_err(Error::invalid_options)?;
        self.request(Method::Put, &path, Some(body)).await
    }

    pub async fn delete(&self, kind: &str, id: &str) -> Result<(), Error<P::Json>> {
        let path = format!("{}/{}", resource_type(kind)?, logical_id(id)?);
        self.request(Method::Delete, &path, None).await.map(|_| ())
    }

    /// The patient in context.
    pub async fn patient(&self) -> Result<P::Json, Error<P::Json>> {
        let id = self
            .state()
            .context
            .patient
            .ok_or_else(|| Error::new(ErrorCode::NoPatient, "there is no patient in context"))?;
        self.read("Patient", &id).await
    }

    /// The encounter in context (`launch/encounter`).
    pub async fn encounter(&self) -> Result<P::Json, Error<P::Json>> {
        let id = self
            .state()
            .context
            .encounter
            .ok_or_else(|| Error::new(ErrorCode::NoEncounter, "there is no encounter in context"))?;
        self.read("Encounter", &id).await
    }

    /// The user (`fhirUser` of the verified id_token).
    pub async fn user(&self) -> Result<P::Json, Error<P::Json>> {
        let fhir_user = self.state().fhir_user.ok_or_else(|| {
            Error::new(
                ErrorCode::NoUser,
                "no verified fhirUser: ask for openid and fhirUser scopes",
            )
        })?;
        self.expect_body(Method::Get, &fhir_user, None).await
    }
}
