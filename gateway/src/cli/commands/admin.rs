//! `cluster` and `cert`.

use super::*;

pub(super) async fn cluster(c: ClusterCommand) -> Result<i32> {
    let post = |conn: &Connection, path: &str, body: Value| {
        let conn = conn.clone();
        let path = path.to_string();
        async move {
            let client = Client::new(&conn)?;
            let v = client
                .json(client.request(Method::POST, &path).json(&body))
                .await?;
            print_json(&v);
            Ok::<i32, anyhow::Error>(0)
        }
    };
    match c {
        ClusterCommand::Status { conn } => {
            print_json(&Client::new(&conn)?.get("/v1/cluster").await?);
            Ok(0)
        }
        ClusterCommand::Init { conn } => post(&conn, "/v1/cluster/init", json!({})).await,
        ClusterCommand::AddLearner { id, addr, conn } => {
            post(
                &conn,
                "/v1/cluster/learners",
                json!({"id": id, "addr": addr}),
            )
            .await
        }
        ClusterCommand::Promote { ids, conn } => {
            post(&conn, "/v1/cluster/voters", json!({"ids": ids})).await
        }
        ClusterCommand::Remove { id, conn } => {
            post(&conn, "/v1/cluster/remove", json!({"id": id})).await
        }
        ClusterCommand::LocalSetup {
            dir,
            nodes,
            ip_prefix,
            port,
            admin_port,
            advertise_port,
            demo,
            election_ms,
            snapshot_logs,
        } => {
            if nodes == 0 || nodes > 9 {
                bail!("--nodes must be between 1 and 9");
            }
            let paths = crate::demo::local_setup(&crate::demo::LocalCluster {
                dir,
                nodes,
                ip_prefix,
                port,
                admin_port,
                advertise_port,
                demo,
                election_min_ms: election_ms,
                snapshot_logs,
            })?;
            for p in paths {
                println!("{}", p.display());
            }
            Ok(0)
        }
    }
}

pub(super) fn cert(c: CertCommand) -> Result<i32> {
    match c {
        CertCommand::InitCa { out, trust_domain } => {
            let path = crate::pki::init_ca(&out, &trust_domain)?;
            println!(
                "created CA {} (keep {} secret)",
                path.display(),
                out.join(crate::pki::CA_KEY).display()
            );
        }
        CertCommand::Issue {
            ca,
            dept,
            name,
            node,
            ip,
            dns,
            out,
            trust_domain,
            days,
        } => {
            let id = match (node, dept) {
                (Some(n), _) => SpiffeId::node(&trust_domain, n),
                (None, Some(d)) => SpiffeId::principal(&trust_domain, &d, &name),
                (None, None) => bail!("give --dept CODE (people and systems) or --node ID (nodes)"),
            };
            if SpiffeId::parse(&id.to_string()).is_none() {
                bail!("'{id}' is not a valid SPIFFE ID: check --dept, --name and --trust-domain");
            }
            let out = out.unwrap_or_else(|| ca.clone());
            let (cert, key) = crate::pki::issue(
                &ca,
                &out,
                &crate::pki::IssueRequest {
                    spiffe: &id,
                    name: &name,
                    ips: &ip,
                    dns: &dns,
                    days,
                },
            )?;
            println!(
                "issued {id}\n  certificate {}\n  key         {}",
                cert.display(),
                key.display()
            );
        }
        CertCommand::Revoke { ca, cert, reason } => {
            use crate::pki::RevocationReason as R;
            let reason = match reason.as_str() {
                "key-compromise" => R::KeyCompromise,
                "affiliation-changed" => R::AffiliationChanged,
                "superseded" => R::Superseded,
                "cessation-of-operation" => R::CessationOfOperation,
                "privilege-withdrawn" => R::PrivilegeWithdrawn,
                _ => R::Unspecified,
            };
            let done = crate::pki::revoke(&ca, &cert, reason)?;
            println!(
                "revoked serial {} ({})\n  revocation list {} (number {}, {} certificate(s))\n  nodes with tls.crl = that file refuse it after their next reload",
                done.serial,
                cert.display(),
                done.crl.display(),
                done.crl_number,
                done.listed
            );
        }
    }
    Ok(0)
}
