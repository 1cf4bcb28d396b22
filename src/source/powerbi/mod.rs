//! The live source: the Power BI admin Activity Events API.
//!
//! Built in pieces, pure logic first: [`window`] plans which UTC hours to read (recent hours
//! every poll, older hours of the lookback re-swept for late events) and [`budget`] keeps the
//! requests under the hourly limit. The HTTP client, authentication and durable state follow
//! (issue 3).

pub mod budget;
pub mod window;
