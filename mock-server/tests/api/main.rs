//! ccri-mock's integration tests, in one binary: each module drives an in-process
//! server over real HTTP (`common`), so the crate is linked once, not once a file.

mod common;

mod authorize;
mod backend_services;
mod conformance;
mod data_loading;
mod enforcement;
mod fhir_api;
mod launcher_and_pages;
mod oauth2_client;
mod operations;
mod restart;
mod search;
mod security;
mod startup;
mod token_grants;
mod tokens;
