//! Sovereign clouds: one setting picks the Power BI API host, the token audience, the Entra ID
//! authority and the cluster hosts a `continuationUri` may point to, so they cannot disagree.
//! Values from the Power BI national-clouds documentation (reference §9.6).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cloud {
    #[default]
    Public,
    /// US Government Community Cloud (GCC).
    UsGov,
    /// GCC High.
    UsGovHigh,
    /// US Department of Defense.
    UsDod,
    /// China, operated by 21Vianet.
    China,
}

impl Cloud {
    pub const NAMES: &'static str = "public, usgov, usgovhigh, usdod, china";

    pub fn api_url(self) -> &'static str {
        match self {
            Cloud::Public => "https://api.powerbi.com",
            Cloud::UsGov => "https://api.powerbigov.us",
            Cloud::UsGovHigh => "https://api.high.powerbigov.us",
            Cloud::UsDod => "https://api.mil.powerbigov.us",
            Cloud::China => "https://api.powerbi.cn",
        }
    }

    /// Token scope: the Power BI resource of the cloud plus `/.default`.
    pub fn scope(self) -> &'static str {
        match self {
            Cloud::Public => "https://analysis.windows.net/powerbi/api/.default",
            Cloud::UsGov => "https://analysis.usgovcloudapi.net/powerbi/api/.default",
            Cloud::UsGovHigh => "https://high.analysis.usgovcloudapi.net/powerbi/api/.default",
            Cloud::UsDod => "https://mil.analysis.usgovcloudapi.net/powerbi/api/.default",
            Cloud::China => "https://analysis.chinacloudapi.cn/powerbi/api/.default",
        }
    }

    /// Scope of tokens for Azure Monitor Logs Ingestion in this cloud's Azure (GCC tenants sign
    /// in to, and run workspaces in, commercial Azure, like its authority).
    pub fn monitor_scope(self) -> &'static str {
        match self {
            Cloud::Public | Cloud::UsGov => "https://monitor.azure.com/.default",
            Cloud::UsGovHigh | Cloud::UsDod => "https://monitor.azure.us/.default",
            Cloud::China => "https://monitor.azure.cn/.default",
        }
    }

    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Public | Cloud::UsGov => "https://login.microsoftonline.com",
            Cloud::UsGovHigh | Cloud::UsDod => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }

    /// Hosts of the cloud's Power BI clusters (e.g. `wabi-…-redirect.analysis.windows.net`).
    pub fn cluster_suffix(self) -> &'static str {
        match self {
            Cloud::Public => ".analysis.windows.net",
            Cloud::UsGov | Cloud::UsGovHigh | Cloud::UsDod => ".analysis.usgovcloudapi.net",
            Cloud::China => ".analysis.chinacloudapi.cn",
        }
    }
}

impl FromStr for Cloud {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "public" | "azurepublic" => Cloud::Public,
            "usgov" | "gcc" => Cloud::UsGov,
            "usgovhigh" | "gcchigh" => Cloud::UsGovHigh,
            "usdod" | "dod" => Cloud::UsDod,
            "china" | "azurechina" => Cloud::China,
            _ => return Err(format!("expected one of {}", Cloud::NAMES)),
        })
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cloud::Public => "public",
            Cloud::UsGov => "usgov",
            Cloud::UsGovHigh => "usgovhigh",
            Cloud::UsDod => "usdod",
            Cloud::China => "china",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cloud_is_consistent() {
        for c in [
            Cloud::Public,
            Cloud::UsGov,
            Cloud::UsGovHigh,
            Cloud::UsDod,
            Cloud::China,
        ] {
            assert_eq!(c.to_string().parse::<Cloud>(), Ok(c));
            assert!(
                c.api_url().starts_with("https://api.")
                    && c.scope().ends_with("/powerbi/api/.default")
            );
            let resource_host = c
                .scope()
                .trim_start_matches("https://")
                .split('/')
                .next()
                .unwrap();
            assert!(
                resource_host.ends_with(c.cluster_suffix().trim_start_matches('.')),
                "{c}: {resource_host}"
            );
        }
        assert_eq!("GCCHigh".parse::<Cloud>(), Ok(Cloud::UsGovHigh));
        assert!("germany".parse::<Cloud>().is_err());
    }
}
