//! `yiwang-bench search`: indexing throughput and query latency of the catalog search
//! (issue 7) — yiwang's index (`SearchIndex::rebuild`, the path a node takes to rebuild,
//! and `SearchIndex::search`, what `GET /v1/search` runs: ranked page, total, facets,
//! highlights) vs SQLite FTS5 with the trigram tokenizer (top page by bm25 and the
//! total count), over the same entries, in one run.
//!
//! Entries come from the real catalog (`cn-open-catalog.jsonl.gz`); for a larger scale
//! it is replicated with varied titles: copy k > 0 of an entry gets a city prefix and a
//! year suffix (`贵阳市…（2013年）`) and its own id; it keeps its department (2,083
//! departments, as in the real catalog, so facets count as many values). The queries are
//! the texts of `ops/eval/queries.json`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use yiwang_catalog::model::{ShareType, UpdateCycle};
use yiwang_catalog::search::{IndexDoc, SearchIndex, SearchQuery};

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The real catalog (JSON lines, gzip)
    #[arg(long, default_value = "../shared/data/cn-open-catalog.jsonl.gz")]
    data: PathBuf,
    /// Entries to index (the real catalog is replicated with varied titles beyond its
    /// 48,890); 0 = the real catalog once
    #[arg(long, default_value_t = 0)]
    entries: usize,
    /// The judged queries whose texts are run (`ops/eval/queries.json`)
    #[arg(long, default_value = "ops/eval/queries.json")]
    queries: PathBuf,
    /// Rounds over the query set (latencies of all rounds are pooled; one warm-up
    /// round is not counted)
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Hits per page, as a search client asks
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Working directory for both indexes (a temporary one by default; removed after)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Append the JSON results to this file
    #[arg(long)]
    jsonl: Option<PathBuf>,
}

/// One real catalog entry, as far as search is concerned.
struct Entry {
    id: String,
    department: String,
    title: String,
    description: String,
    theme: String,
    tags: Vec<String>,
    open_attr: String,
    published: String,
}

const CITIES: [&str; 24] = [
    "贵阳市",
    "遵义市",
    "六盘水市",
    "安顺市",
    "毕节市",
    "铜仁市",
    "南宁市",
    "柳州市",
    "桂林市",
    "梧州市",
    "北海市",
    "海口市",
    "三亚市",
    "合肥市",
    "芜湖市",
    "蚌埠市",
    "淮南市",
    "马鞍山市",
    "宜宾市",
    "达州市",
    "眉山市",
    "成都市",
    "绵阳市",
    "南充市",
];

fn load(path: &Path) -> Result<Vec<Entry>> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run gzip -dc {}", path.display()))?;
    let reader = std::io::BufReader::new(child.stdout.take().context("gzip stdout")?);
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).context("catalog line is not JSON")?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        out.push(Entry {
            id: s("id"),
            department: s("department"),
            title: s("title"),
            description: s("description"),
            theme: v["theme"]
                .as_str()
                .or(v["industry"].as_str())
                .unwrap_or("其他")
                .to_string(),
            tags: v["tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            open_attr: s("open_attr"),
            published: s("published"),
        });
    }
    if !child.wait()?.success() {
        bail!("gzip -dc {} failed", path.display());
    }
    Ok(out)
}

/// The `n`-th entry of the replicated catalog.
fn entry_doc(base: &[Entry], n: usize, depts: &BTreeMap<String, usize>) -> IndexDoc {
    let e = &base[n % base.len()];
    let copy = n / base.len();
    let (title, id) = if copy == 0 {
        (e.title.clone(), e.id.clone())
    } else {
        let city = CITIES[(copy + n) % CITIES.len()];
        let year = 2010 + (copy * 7 + n) % 15;
        (
            format!("{city}{}（{year}年）", e.title),
            format!("{}-r{copy}", e.id),
        )
    };
    let dept_no = depts.get(&e.department).copied().unwrap_or(0);
    IndexDoc {
        id,
        dept: format!("D{dept_no:04}"),
        dept_name: e.department.clone(),
        title,
        summary: e.description.clone(),
        keywords: e.tags.clone(),
        theme: e.theme.clone(),
        share_type: if e.open_attr.starts_with("有条件") {
            ShareType::Conditional
        } else {
            ShareType::Unconditional
        },
        update_cycle: UpdateCycle::Irregular,
        field_titles: Vec::new(),
        published_at: e.published.clone(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn summary(mut lat: Vec<Duration>) -> Value {
    lat.sort();
    json!({
        "queries": lat.len(),
        "p50_ms": percentile(&lat, 0.50),
        "p99_ms": percentile(&lat, 0.99),
        "max_ms": lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    })
}

/// FTS5's MATCH expression for a query: each whitespace-separated term of at least three
/// characters as a quoted string, ORed; `None` when a term is shorter (trigram cannot
/// match it: the baseline falls back to LIKE).
fn fts_match(q: &str) -> Option<String> {
    let terms: Vec<&str> = q.split_whitespace().collect();
    if terms.is_empty() || terms.iter().any(|t| t.chars().count() < 3) {
        return None;
    }
    Some(
        terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" OR "),
    )
}

pub fn run(a: SearchArgs) -> Result<()> {
    let base = load(&a.data)?;
    let entries = if a.entries == 0 {
        base.len()
    } else {
        a.entries
    };
    let mut depts = BTreeMap::new();
    for e in &base {
        let next = depts.len();
        depts.entry(e.department.clone()).or_insert(next);
    }
    let queries: Vec<String> = {
        let text = std::fs::read_to_string(&a.queries)
            .with_context(|| format!("cannot read {}", a.queries.display()))?;
        let v: Value = serde_json::from_str(&text)?;
        v["queries"]
            .as_array()
            .context("queries.json has no \"queries\" list")?
            .iter()
            .filter_map(|q| q["q"].as_str().map(str::to_string))
            .collect()
    };
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempdir()?;
            tmp.clone()
        }
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "bench/search: {entries} entries ({} real, replicated), {} queries × {} rounds, {cpus} CPUs",
        base.len(),
        queries.len(),
        a.rounds
    );

    // yiwang: the rebuild path of a node.
    let index_dir = dir.join("tantivy");
    let _ = std::fs::remove_dir_all(&index_dir);
    let index = SearchIndex::open(&index_dir)?;
    let started = Instant::now();
    let indexed = index.rebuild((0..entries).map(|n| entry_doc(&base, n, &depts)), 1)?;
    let yiwang_index_s = started.elapsed().as_secs_f64();
    eprintln!(
        "bench/search: yiwang indexed {indexed} in {yiwang_index_s:.1} s ({:.0}/s)",
        indexed as f64 / yiwang_index_s
    );

    // SQLite FTS5, trigram tokenizer, on disk like the tantivy index.
    let db_path = dir.join("fts5.db");
    let _ = std::fs::remove_file(&db_path);
    let mut db = rusqlite::Connection::open(&db_path)?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, title, summary, tokenize='trigram');",
    )?;
    let started = Instant::now();
    {
        let tx = db.transaction()?;
        {
            let mut insert =
                tx.prepare("INSERT INTO docs (id, title, summary) VALUES (?1, ?2, ?3)")?;
            for n in 0..entries {
                let d = entry_doc(&base, n, &depts);
                insert.execute(rusqlite::params![d.id, d.title, d.summary])?;
            }
        }
        tx.commit()?;
    }
    let fts_index_s = started.elapsed().as_secs_f64();
    eprintln!(
        "bench/search: FTS5 indexed {entries} in {fts_index_s:.1} s ({:.0}/s)",
        entries as f64 / fts_index_s
    );

    // Queries: one warm-up round, then `rounds` measured, interleaving the systems.
    let mut yiwang_lat = Vec::new();
    let mut per_query: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut fts_lat = Vec::new();
    let mut fts_match_lat = Vec::new();
    let mut like_queries = 0;
    let mut top = db.prepare(
        "SELECT id FROM docs WHERE docs MATCH ?1 ORDER BY bm25(docs, 0.0, 10.0, 1.0) LIMIT ?2",
    )?;
    let mut count = db.prepare("SELECT count(*) FROM docs WHERE docs MATCH ?1")?;
    let mut like_top =
        db.prepare("SELECT id FROM docs WHERE title LIKE ?1 OR summary LIKE ?1 LIMIT ?2")?;
    let mut like_count =
        db.prepare("SELECT count(*) FROM docs WHERE title LIKE ?1 OR summary LIKE ?1")?;
    for round in 0..=a.rounds {
        for q in &queries {
            let started = Instant::now();
            let r = index.search(&SearchQuery {
                q: q.clone(),
                limit: a.limit,
                ..SearchQuery::default()
            })?;
            let took = started.elapsed();
            std::hint::black_box(&r);
            if round > 0 {
                yiwang_lat.push(took);
                per_query.entry(q.as_str()).or_default().push(took);
            }

            let started = Instant::now();
            let (hits, total): (Vec<String>, i64) = match fts_match(q) {
                Some(m) => {
                    let hits = top
                        .query_map(rusqlite::params![m, a.limit as i64], |row| row.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()?;
                    let total = count.query_row([&m], |row| row.get(0))?;
                    (hits, total)
                }
                None => {
                    if round == 1 {
                        like_queries += 1;
                    }
                    let pattern = format!("%{}%", q.split_whitespace().next().unwrap_or(q));
                    let hits = like_top
                        .query_map(rusqlite::params![pattern, a.limit as i64], |row| row.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()?;
                    let total = like_count.query_row([&pattern], |row| row.get(0))?;
                    (hits, total)
                }
            };
            let took = started.elapsed();
            std::hint::black_box((&hits, total));
            if round > 0 {
                fts_lat.push(took);
                if fts_match(q).is_some() {
                    fts_match_lat.push(took);
                }
            }
        }
    }
    // The slowest queries (by their worst round), to see where the tail comes from.
    let mut slowest: Vec<(f64, &str)> = per_query
        .iter()
        .map(|(q, l)| (l.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1000.0), *q))
        .collect();
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    slowest.truncate(8);
    let index_bytes = dir_size(&index_dir);
    let db_bytes = std::fs::metadata(&db_path).map_or(0, |m| m.len())
        + std::fs::metadata(dir.join("fts5.db-wal")).map_or(0, |m| m.len());
    let result = json!({
        "bench": "search",
        "entries": entries,
        "real_entries": base.len(),
        "queries": queries.len(),
        "rounds": a.rounds,
        "limit": a.limit,
        "cpus": cpus,
        "yiwang": {
            "index_s": yiwang_index_s,
            "docs_per_s": indexed as f64 / yiwang_index_s,
            "index_mb": index_bytes as f64 / 1e6,
            "search": summary(yiwang_lat),
            "slowest_ms": slowest.iter().map(|(ms, q)| json!([q, ms])).collect::<Vec<_>>(),
        },
        "fts5_trigram": {
            "index_s": fts_index_s,
            "docs_per_s": entries as f64 / fts_index_s,
            "index_mb": db_bytes as f64 / 1e6,
            "search": summary(fts_lat),
            "search_match_only": summary(fts_match_lat),
            "like_fallback_queries": like_queries,
        },
    });
    println!("{result}");
    if let Some(path) = &a.jsonl {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{result}")?;
    }
    drop(top);
    drop(count);
    drop(like_top);
    drop(like_count);
    drop(db);
    drop(index);
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn tempdir() -> Result<PathBuf> {
    let base = std::env::var_os("TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("yiwang-bench-search-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}
