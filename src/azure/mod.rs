//! Azure plumbing shared by the live source (Power BI API) and the Logs Ingestion sink: Entra ID
//! credentials and token caches ([`auth`]), the sovereign clouds ([`cloud`]), the credential's
//! settings ([`settings`]), and HTTP helpers ([`http`]).

pub mod auth;
pub mod cloud;
pub mod http;
pub mod settings;
