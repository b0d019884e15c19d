//! The demo's principals: who they are, and their certificates.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use yiwang_catalog::demo;
use yiwang_catalog::identity::SpiffeId;
use yiwang_catalog::model::Role;

use crate::pki;

/// One entry of `principals.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoPrincipal {
    pub name: String,
    pub spiffe_id: String,
    pub dept: String,
    pub role: Role,
    pub cert: String,
    pub key: String,
}

/// (certificate name, department, SPIFFE name, role)
const PRINCIPALS: [(&str, &str, &str, Role); 12] = [
    ("admin", demo::DATA_BUREAU, "admin", Role::Admin),
    ("auditor", demo::DATA_BUREAU, "auditor", Role::Auditor),
    ("dsj-system", demo::DATA_BUREAU, "city-ops", Role::System),
    ("yjj-steward", demo::SCENARIO_YJJ, "steward", Role::Steward),
    ("yjj-system", demo::SCENARIO_YJJ, "system", Role::System),
    (
        "yjj-auditor",
        demo::SCENARIO_YJJ,
        "auditor",
        Role::DeptAuditor,
    ),
    ("jtj-steward", demo::SCENARIO_JTJ, "steward", Role::Steward),
    ("jtj-system", demo::SCENARIO_JTJ, "system", Role::System),
    (
        "gdgs-steward",
        demo::SCENARIO_GDGS,
        "steward",
        Role::Steward,
    ),
    ("gdgs-system", demo::SCENARIO_GDGS, "system", Role::System),
    ("gaj-steward", "320600-GAJ", "steward", Role::Steward),
    ("gaj-system", "320600-GAJ", "system", Role::System),
];

/// Issues the demo principals' certificates into `certs` (skipping ones that exist)
/// and returns their descriptions.
pub fn ensure(certs: &Path, trust_domain: &str) -> Result<Vec<DemoPrincipal>> {
    let mut out = Vec::new();
    for (name, dept, spiffe_name, role) in PRINCIPALS {
        let id = SpiffeId::principal(trust_domain, dept, spiffe_name);
        let cert = certs.join(format!("{name}.pem"));
        let key = certs.join(format!("{name}.key"));
        if !(cert.exists() && key.exists()) {
            pki::issue(
                certs,
                certs,
                &pki::IssueRequest {
                    spiffe: &id,
                    name,
                    ips: &[],
                    dns: &[],
                    days: 825,
                },
            )?;
        }
        out.push(DemoPrincipal {
            name: name.to_string(),
            spiffe_id: id.to_string(),
            dept: dept.to_string(),
            role,
            cert: cert.display().to_string(),
            key: key.display().to_string(),
        });
    }
    Ok(out)
}
