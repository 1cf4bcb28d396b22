//! Azure plumbing shared by the live source (Power BI API) and the Logs Ingestion sink: Entra ID
//! credentials and token caches ([`auth`]), the sovereign clouds ([`cloud`]), the credential's
//! settings ([`settings`]), HTTP helpers ([`http`]), and the certificate's expiry ([`x509`]).
//!
//! Invariants: a secret or token never appears in a log line or an error message, nor does a
//! URL (its query may hold a token); every response body is read up to a limit.

pub mod auth;
pub mod cloud;
pub mod http;
pub mod settings;
pub mod x509;
