//! Azure plumbing shared by the live source (Power BI API) and the Logs Ingestion sink: Entra ID
//! credentials and token caches ([`auth`]), and HTTP helpers ([`http`]).

pub mod auth;
pub mod http;
