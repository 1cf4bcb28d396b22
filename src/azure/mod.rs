//! Azure plumbing shared by the live source (Power BI API) and the Logs Ingestion sink: Entra ID
//! credentials and token caches ([`auth`]), HTTP helpers ([`http`]), and the certificate's
//! expiry ([`x509`]).

pub mod auth;
pub mod http;
pub mod x509;
