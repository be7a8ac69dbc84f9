//! ccri-mock's integration tests, in one binary: each module drives an in-process
//! server over real HTTP (`common`), or the binary itself (`binary`: restarts, replicas
//! on one PostgreSQL database), so the crate is linked once, not once a file.

mod binary;
mod common;
mod postgres_server;

mod authorize;
mod backend_services;
mod conformance;
mod data_loading;
mod enforcement;
mod fhir_api;
mod launcher_and_pages;
mod oauth2_client;
mod operations;
mod replicas;
mod restart;
mod search;
mod security;
mod startup;
mod token_grants;
mod tokens;
