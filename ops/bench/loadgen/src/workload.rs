//! The requests of each operation, the pre-created read set, and leader detection.

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::{Op, RunArgs};

/// xorshift64: cheap, deterministic choice of the key to read.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

pub struct Workload {
    pub nodes: Vec<String>,
    op: Op,
    run_id: String,
    value_size: usize,
    bulk_size: usize,
    keys: usize,
    dept: String,
    stale: bool,
    records_path: String,
}

/// Short, bounded error text (the map of distinct messages must stay small).
fn short(status: reqwest::StatusCode, body: &str) -> String {
    let mut b: String = body.chars().take(140).collect();
    // Ids in messages would make every error distinct.
    if let Some(i) = b.find("'b") {
        b.truncate(i);
    }
    format!("{}: {b}", status.as_u16())
}

impl Workload {
    pub fn new(args: &RunArgs, nodes: Vec<String>, run_id: String) -> Workload {
        Workload {
            nodes,
            op: args.op,
            run_id,
            value_size: args.value_size,
            bulk_size: args.bulk_size,
            keys: args.keys.max(1),
            dept: args.dept.clone(),
            stale: args.stale,
            records_path: args.records_path.clone(),
        }
    }

    pub fn items_per_request(&self) -> usize {
        match self.op {
            Op::Bulk | Op::Txn => self.bulk_size,
            _ => 1,
        }
    }

    /// Size of one dataset JSON (yiwang) or value (etcd).
    pub fn value_bytes(&self) -> usize {
        self.dataset(&self.dataset_id(0, 0, None)).len()
    }

    fn dataset_id(&self, task: usize, seq: u64, j: Option<usize>) -> String {
        match j {
            Some(j) => format!("b{}-{task}-{seq}-{j}", self.run_id),
            None => format!("b{}-{task}-{seq}", self.run_id),
        }
    }

    fn read_id(&self, i: usize) -> String {
        format!("b{}-r{i}", self.run_id)
    }

    fn etcd_key(&self, task: usize, seq: u64, j: usize) -> String {
        format!("bench/{}/{task}/{seq}/{j}", self.run_id)
    }

    fn etcd_read_key(&self, i: usize) -> String {
        format!("bench/{}/r/{i}", self.run_id)
    }

    /// A dataset as `POST /v1/datasets` takes it, padded (summary) to `value_size`
    /// bytes. etcd stores the same JSON as its value.
    pub fn dataset(&self, id: &str) -> String {
        let make = |summary: &str| {
            serde_json::json!({
                "id": id,
                "dept": self.dept,
                "title": format!("基准测试数据集 {id}"),
                "summary": summary,
                "keywords": ["基准", "测试"],
                "theme": "公共安全",
                "format": "table",
                "share_type": "unconditional",
                "update_cycle": "daily",
                "fields": [
                    {"name": "enterprise_id", "title": "企业编号", "type": "string", "sensitivity": "public"},
                    {"name": "name", "title": "企业名称", "type": "string", "sensitivity": "public"},
                    {"name": "updated", "title": "更新日期", "type": "date", "sensitivity": "internal"}
                ]
            })
            .to_string()
        };
        let bare = make("");
        let need = self.value_size.saturating_sub(bare.len());
        let mut pad = String::with_capacity(need);
        for c in "企业名录按日更新，供基准测试使用。".chars().cycle() {
            if pad.len() + c.len_utf8() > need {
                break;
            }
            pad.push(c);
        }
        while pad.len() < need {
            pad.push('x');
        }
        make(&pad)
    }

    fn put_json(&self, key: &str, value: &str) -> serde_json::Value {
        serde_json::json!({"key": B64.encode(key), "value": B64.encode(value)})
    }

    fn txn_body(&self, keys: impl Iterator<Item = String>) -> String {
        let puts: Vec<serde_json::Value> = keys
            .map(|k| {
                let v = self.dataset(&k);
                serde_json::json!({"request_put": self.put_json(&k, &v)})
            })
            .collect();
        serde_json::json!({"success": puts}).to_string()
    }

    /// One request of the operation; `Ok(items)` on success.
    pub async fn one(
        &self,
        client: &reqwest::Client,
        node: usize,
        task: usize,
        seq: u64,
        rng: &mut Rng,
    ) -> Result<u64, String> {
        let base = &self.nodes[node];
        let req = match self.op {
            Op::Register => {
                let id = self.dataset_id(task, seq, None);
                client
                    .post(format!("{base}/v1/datasets"))
                    .header("content-type", "application/json")
                    .body(self.dataset(&id))
            }
            Op::Bulk => {
                let mut body = String::with_capacity(self.bulk_size * (self.value_size + 1));
                for j in 0..self.bulk_size {
                    body.push_str(&self.dataset(&self.dataset_id(task, seq, Some(j))));
                    body.push('\n');
                }
                client
                    .post(format!("{base}/v1/datasets/bulk"))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
            }
            Op::Read => {
                let id = self.read_id(rng.below(self.keys));
                let q = if self.stale { "?consistency=stale" } else { "" };
                client.get(format!("{base}/v1/datasets/{id}{q}"))
            }
            Op::Records => client
                .get(format!("{base}{}", self.records_path))
                .header("x-purpose", "benchmark"),
            Op::Put => {
                let key = self.etcd_key(task, seq, 0);
                let value = self.dataset(&key);
                client
                    .post(format!("{base}/v3/kv/put"))
                    .header("content-type", "application/json")
                    .body(self.put_json(&key, &value).to_string())
            }
            Op::Get => {
                let key = self.etcd_read_key(rng.below(self.keys));
                let mut body = serde_json::json!({"key": B64.encode(key)});
                if self.stale {
                    body["serializable"] = serde_json::Value::Bool(true);
                }
                client
                    .post(format!("{base}/v3/kv/range"))
                    .header("content-type", "application/json")
                    .body(body.to_string())
            }
            Op::Txn => {
                let body = self.txn_body((0..self.bulk_size).map(|j| self.etcd_key(task, seq, j)));
                client
                    .post(format!("{base}/v3/kv/txn"))
                    .header("content-type", "application/json")
                    .body(body)
            }
        };
        let resp = req.send().await.map_err(|e| {
            let mut s = format!("transport: {e}");
            if let Some(src) = std::error::Error::source(&e) {
                s.push_str(&format!(" ({src})"));
            }
            s.chars().take(160).collect::<String>()
        })?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| format!("reading body: {e}"))?;
        let expected = match self.op {
            Op::Register => reqwest::StatusCode::CREATED,
            _ => reqwest::StatusCode::OK,
        };
        if status != expected {
            return Err(short(status, &body));
        }
        match self.op {
            Op::Bulk => {
                let v: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| format!("bulk answer: {e}"))?;
                let created = v["created"].as_u64().unwrap_or(0);
                if created != self.bulk_size as u64 {
                    return Err(format!(
                        "bulk: {created} of {} created: {}",
                        self.bulk_size,
                        v["results"]
                            .as_array()
                            .and_then(|r| r.iter().find(|x| x["status"] != "created"))
                            .map_or(String::new(), |x| x["error"]["code"].to_string())
                    ));
                }
                Ok(created)
            }
            Op::Get if !body.contains("\"kvs\"") => Err("get: key not found".into()),
            Op::Txn if !body.contains("\"succeeded\":true") => Err(format!(
                "txn: {}",
                body.chars().take(140).collect::<String>()
            )),
            Op::Txn => Ok(self.bulk_size as u64),
            _ => Ok(1),
        }
    }

    /// Pre-creates the datasets or keys that `read` and `get` choose from.
    pub async fn setup(&self, client: &reqwest::Client) -> Result<()> {
        let base = &self.nodes[0];
        match self.op {
            Op::Read => {
                let ids: Vec<String> = (0..self.keys).map(|i| self.read_id(i)).collect();
                for chunk in ids.chunks(500) {
                    let body: String = chunk
                        .iter()
                        .map(|id| format!("{}\n", self.dataset(id)))
                        .collect();
                    let resp = client
                        .post(format!("{base}/v1/datasets/bulk"))
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await
                        .context("setup: bulk registration")?;
                    let status = resp.status();
                    let text = resp.text().await?;
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    if !status.is_success() || v["created"].as_u64() != Some(chunk.len() as u64) {
                        bail!(
                            "setup: pre-creating datasets failed ({status}): {}",
                            text.chars().take(400).collect::<String>()
                        );
                    }
                }
            }
            Op::Get => {
                let keys: Vec<String> = (0..self.keys).map(|i| self.etcd_read_key(i)).collect();
                for chunk in keys.chunks(100) {
                    let resp = client
                        .post(format!("{base}/v3/kv/txn"))
                        .header("content-type", "application/json")
                        .body(self.txn_body(chunk.iter().cloned()))
                        .send()
                        .await
                        .context("setup: etcd txn")?;
                    let status = resp.status();
                    let text = resp.text().await?;
                    if !status.is_success() || !text.contains("\"succeeded\":true") {
                        bail!(
                            "setup: pre-creating keys failed ({status}): {}",
                            text.chars().take(400).collect::<String>()
                        );
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Which of the nodes is the leader (its index in `nodes`), for the record: with
    /// one client, only node 0 is used.
    pub async fn leader(&self, client: &reqwest::Client) -> serde_json::Value {
        match self.op.system() {
            crate::System::Yiwang => {
                let url = format!("{}/v1/cluster", self.nodes[0]);
                let Ok(r) = client.get(url).send().await else {
                    return serde_json::Value::Null;
                };
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                let leader = v["leader"].as_u64();
                let addr = v["members"].as_array().and_then(|m| {
                    m.iter()
                        .find(|x| x["id"].as_u64() == leader)
                        .and_then(|x| x["addr"].as_str().map(str::to_string))
                });
                let index = addr.and_then(|a| self.nodes.iter().position(|n| n.ends_with(&a)));
                serde_json::json!({"id": leader, "node_index": index})
            }
            crate::System::Etcd => {
                for (i, n) in self.nodes.iter().enumerate() {
                    let Ok(r) = client
                        .post(format!("{n}/v3/maintenance/status"))
                        .body("{}")
                        .send()
                        .await
                    else {
                        continue;
                    };
                    let v: serde_json::Value = r.json().await.unwrap_or_default();
                    if v["leader"].is_string() && v["leader"] == v["header"]["member_id"] {
                        return serde_json::json!({"id": v["leader"], "node_index": i});
                    }
                }
                serde_json::Value::Null
            }
        }
    }
}
