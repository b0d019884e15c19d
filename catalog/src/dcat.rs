//! The catalog as DCAT-AP 3.0 RDF (`GET /v1/catalog.ttl`, `GET /v1/catalog.jsonld`).
//!
//! One page of the export is a self-contained graph:
//! - the `dcat:Catalog` (`<base>/v1/catalog`) with title, description and publisher, and
//!   `dcat:dataset` links to the page's datasets; a `hydra:PartialCollectionView` says
//!   which page this is and links the first, previous, next and last pages;
//! - each active dataset as a `dcat:Dataset` (`<base>/v1/datasets/<id>#dataset`, its
//!   landing page the dataset's JSON description `<base>/v1/datasets/<id>`): identifier,
//!   title, description, keywords, theme (as a keyword), issued/modified times,
//!   `dct:publisher` (its department), `dct:accrualPeriodicity` (EU frequency
//!   vocabulary), `dct:accessRights` (EU access-right vocabulary: unconditional → PUBLIC,
//!   conditional → RESTRICTED, none → NON_PUBLIC) and one `dcat:Distribution` whose
//!   `dcat:accessURL` is the dataset's records endpoint;
//! - each department of the page as a `foaf:Agent` with `foaf:name`.
//!
//! DCAT-AP makes `dct:description` mandatory; a dataset registered without a summary is
//! described by its title. Every referenced resource (frequency, access right, media
//! type, landing page, access URL, homepage) is typed in the graph, so that a SHACL
//! validator sees its class without inference.
//!
//! The graph is built as triples once and written out as Turtle or as JSON-LD.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::model::{Dataset, Department, ShareType, UpdateCycle};

const PREFIXES: [(&str, &str); 9] = [
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("hydra", "http://www.w3.org/ns/hydra/core#"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
];

/// Name of the catalog's publisher: the operator of the exchange.
pub const CATALOG_PUBLISHER: &str = "一网数据共享交换平台";

/// An RDF term in object position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Object {
    Iri(String),
    /// A literal with a language tag.
    Text(String),
    /// A plain string.
    Str(String),
    DateTime(String),
    Integer(u64),
}

/// Triples grouped by subject (insertion order kept within a subject).
#[derive(Debug, Default)]
pub struct Graph {
    subjects: Vec<String>,
    nodes: BTreeMap<String, Vec<(&'static str, Object)>>,
    /// Every triple, to add each once (the same department or frequency is referenced
    /// by many datasets of a page).
    seen: HashSet<(String, &'static str, Object)>,
}

impl Graph {
    fn add(&mut self, subject: &str, predicate: &'static str, object: Object) {
        if !self
            .seen
            .insert((subject.to_string(), predicate, object.clone()))
        {
            return;
        }
        let entry = self.nodes.entry(subject.to_string()).or_insert_with(|| {
            self.subjects.push(subject.to_string());
            Vec::new()
        });
        entry.push((predicate, object));
    }

    fn typed(&mut self, subject: &str, class: &'static str) {
        self.add(subject, "rdf:type", Object::Iri(expand(class)));
    }

    /// Number of triples.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn expand(prefixed: &str) -> String {
    let (prefix, local) = prefixed.split_once(':').expect("prefixed name");
    let ns = PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, ns)| *ns)
        .expect("known prefix");
    format!("{ns}{local}")
}

/// Which page of the export, and what it links to.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// 1-based page number.
    pub number: usize,
    pub per_page: usize,
    /// Active datasets in the whole catalog.
    pub total: usize,
}

impl Page {
    pub fn last(&self) -> usize {
        self.total.div_ceil(self.per_page).max(1)
    }
}

/// The graph of one page. `base` is `https://host:port`; `ext` is `ttl` or `jsonld` (for
/// the page links); `datasets` are the page's datasets; `departments` the catalog's.
pub fn graph(
    base: &str,
    ext: &str,
    page: Page,
    datasets: &[&Dataset],
    departments: &BTreeMap<String, Department>,
) -> Graph {
    let mut g = Graph::default();
    let catalog = format!("{base}/v1/catalog");
    let operator = format!("{catalog}#publisher");
    g.typed(&catalog, "dcat:Catalog");
    g.add(
        &catalog,
        "dct:title",
        Object::Text("一网 政务数据资源目录".into()),
    );
    g.add(
        &catalog,
        "dct:description",
        Object::Text(
            "各部门登记的政务数据资源，经一网数据共享交换平台按共享类型和授权提供。".into(),
        ),
    );
    g.add(&catalog, "dct:publisher", Object::Iri(operator.clone()));
    let homepage = format!("{base}/v1/datasets");
    g.add(&catalog, "foaf:homepage", Object::Iri(homepage.clone()));
    g.typed(&homepage, "foaf:Document");
    g.typed(&operator, "foaf:Agent");
    g.add(
        &operator,
        "foaf:name",
        Object::Text(CATALOG_PUBLISHER.into()),
    );

    let page_iri = |n: usize| {
        format!(
            "{base}/v1/catalog.{ext}?page={n}&per_page={}",
            page.per_page
        )
    };
    let view = page_iri(page.number);
    g.add(&catalog, "hydra:view", Object::Iri(view.clone()));
    g.add(
        &catalog,
        "hydra:totalItems",
        Object::Integer(page.total as u64),
    );
    g.typed(&view, "hydra:PartialCollectionView");
    g.add(&view, "hydra:first", Object::Iri(page_iri(1)));
    g.add(&view, "hydra:last", Object::Iri(page_iri(page.last())));
    if page.number > 1 {
        g.add(
            &view,
            "hydra:previous",
            Object::Iri(page_iri(page.number - 1)),
        );
    }
    if page.number < page.last() {
        g.add(&view, "hydra:next", Object::Iri(page_iri(page.number + 1)));
    }

    for d in datasets {
        // The dataset's JSON description is its landing page; the dataset itself and
        // its distribution are fragments of it.
        let landing = format!("{base}/v1/datasets/{}", d.id);
        let ds = format!("{landing}#dataset");
        let dist = format!("{landing}#records");
        let agent = format!("{base}/v1/departments/{}", d.dept);
        g.add(&catalog, "dcat:dataset", Object::Iri(ds.clone()));
        g.typed(&ds, "dcat:Dataset");
        g.add(&ds, "dct:identifier", Object::Str(d.id.clone()));
        g.add(&ds, "dct:title", Object::Text(d.title.clone()));
        let description = if d.summary.trim().is_empty() {
            d.title.clone()
        } else {
            d.summary.clone()
        };
        g.add(&ds, "dct:description", Object::Text(description));
        for k in &d.keywords {
            g.add(&ds, "dcat:keyword", Object::Text(k.clone()));
        }
        if !d.theme.is_empty() {
            g.add(&ds, "dcat:keyword", Object::Text(d.theme.clone()));
        }
        if !d.published_at.is_empty() {
            g.add(&ds, "dct:issued", Object::DateTime(d.published_at.clone()));
        }
        if !d.updated_at.is_empty() {
            g.add(&ds, "dct:modified", Object::DateTime(d.updated_at.clone()));
        }
        g.add(&ds, "dcat:landingPage", Object::Iri(landing.clone()));
        g.typed(&landing, "foaf:Document");
        g.add(&ds, "dct:publisher", Object::Iri(agent.clone()));
        g.typed(&agent, "foaf:Agent");
        let name = departments
            .get(&d.dept)
            .map_or_else(|| d.dept.clone(), |x| x.name.clone());
        g.add(&agent, "foaf:name", Object::Text(name));
        g.add(&agent, "dct:identifier", Object::Str(d.dept.clone()));

        let (freq, freq_label) = frequency(d.update_cycle);
        g.add(&ds, "dct:accrualPeriodicity", Object::Iri(freq.clone()));
        g.typed(&freq, "dct:Frequency");
        g.typed(&freq, "skos:Concept");
        g.add(&freq, "skos:prefLabel", Object::Text(freq_label.into()));

        let (rights, rights_label) = access_rights(d.share_type);
        g.add(&ds, "dct:accessRights", Object::Iri(rights.clone()));
        g.typed(&rights, "dct:RightsStatement");
        g.add(&rights, "skos:prefLabel", Object::Text(rights_label.into()));

        g.add(&ds, "dcat:distribution", Object::Iri(dist.clone()));
        g.typed(&dist, "dcat:Distribution");
        g.add(&dist, "dct:title", Object::Text("记录接口".into()));
        g.add(
            &dist,
            "dct:description",
            Object::Text("HTTPS 接口，需客户端证书；按共享类型和授权返回字段与行。".into()),
        );
        let access = format!("{landing}/records");
        g.add(&dist, "dcat:accessURL", Object::Iri(access.clone()));
        g.typed(&access, "rdfs:Resource");
        let media = "http://www.iana.org/assignments/media-types/application/json".to_string();
        g.add(&dist, "dcat:mediaType", Object::Iri(media.clone()));
        g.typed(&media, "dct:MediaType");
        let format = "http://publications.europa.eu/resource/authority/file-type/JSON".to_string();
        g.add(&dist, "dct:format", Object::Iri(format.clone()));
        g.typed(&format, "dct:MediaTypeOrExtent");
    }
    g
}

fn frequency(u: UpdateCycle) -> (String, &'static str) {
    let (code, label) = match u {
        UpdateCycle::Realtime => ("UPDATE_CONT", "实时"),
        UpdateCycle::Daily => ("DAILY", "每日"),
        UpdateCycle::Weekly => ("WEEKLY", "每周"),
        UpdateCycle::Monthly => ("MONTHLY", "每月"),
        UpdateCycle::Quarterly => ("QUARTERLY", "每季度"),
        UpdateCycle::Yearly => ("ANNUAL", "每年"),
        UpdateCycle::Irregular => ("IRREG", "不定期"),
    };
    (
        format!("http://publications.europa.eu/resource/authority/frequency/{code}"),
        label,
    )
}

fn access_rights(s: ShareType) -> (String, &'static str) {
    let (code, label) = match s {
        ShareType::Unconditional => ("PUBLIC", "无条件共享"),
        ShareType::Conditional => ("RESTRICTED", "有条件共享"),
        ShareType::None => ("NON_PUBLIC", "不予共享"),
    };
    (
        format!("http://publications.europa.eu/resource/authority/access-right/{code}"),
        label,
    )
}

/// Language tag of text literals.
const LANG: &str = "zh";

/// Writes the graph as Turtle.
pub fn to_turtle(g: &Graph) -> String {
    let mut out = String::new();
    for (prefix, ns) in PREFIXES {
        let _ = writeln!(out, "@prefix {prefix}: <{ns}> .");
    }
    for subject in &g.subjects {
        let Some(props) = g.nodes.get(subject) else {
            continue;
        };
        let _ = write!(out, "\n{}", iri(subject));
        for (i, (predicate, object)) in props.iter().enumerate() {
            let sep = if i == 0 { "\n    " } else { " ;\n    " };
            let predicate = if *predicate == "rdf:type" {
                "a"
            } else {
                predicate
            };
            let _ = write!(out, "{sep}{predicate} {}", turtle_object(object));
        }
        out.push_str(" .\n");
    }
    out
}

fn iri(value: &str) -> String {
    // Our IRIs are built from validated codes and the configured address; escape what
    // Turtle forbids in an IRIREF anyway, so that a bad value cannot break the document.
    let mut out = String::with_capacity(value.len() + 2);
    out.push('<');
    for c in value.chars() {
        match c {
            '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' | ' ' | '\u{0}'..='\u{20}' => {
                let _ = write!(out, "%{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('>');
    out
}

fn turtle_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn turtle_object(o: &Object) -> String {
    match o {
        Object::Iri(v) => iri(v),
        Object::Text(v) => format!("{}@{LANG}", turtle_string(v)),
        Object::Str(v) => turtle_string(v),
        Object::DateTime(v) => format!("{}^^xsd:dateTime", turtle_string(v)),
        Object::Integer(n) => format!("{}^^xsd:integer", turtle_string(&n.to_string())),
    }
}

/// Writes the graph as JSON-LD: an `@context` with the prefixes and a `@graph` of nodes.
pub fn to_jsonld(g: &Graph) -> Value {
    let context: serde_json::Map<String, Value> = PREFIXES
        .iter()
        .map(|(p, ns)| (p.to_string(), json!(ns)))
        .collect();
    let mut nodes = Vec::new();
    for subject in &g.subjects {
        let Some(props) = g.nodes.get(subject) else {
            continue;
        };
        let mut node = serde_json::Map::new();
        node.insert("@id".into(), json!(subject));
        let mut types = Vec::new();
        let mut by_predicate: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (predicate, object) in props {
            if *predicate == "rdf:type" {
                if let Object::Iri(t) = object {
                    types.push(json!(t));
                }
                continue;
            }
            let value = match object {
                Object::Iri(v) => json!({"@id": v}),
                Object::Text(v) => json!({"@value": v, "@language": LANG}),
                Object::Str(v) => json!({"@value": v}),
                Object::DateTime(v) => json!({"@value": v, "@type": expand("xsd:dateTime")}),
                Object::Integer(n) => {
                    json!({"@value": n.to_string(), "@type": expand("xsd:integer")})
                }
            };
            by_predicate.entry(predicate).or_default().push(value);
        }
        if !types.is_empty() {
            node.insert("@type".into(), Value::Array(types));
        }
        for (predicate, values) in by_predicate {
            node.insert(predicate.to_string(), Value::Array(values));
        }
        nodes.push(Value::Object(node));
    }
    json!({"@context": context, "@graph": nodes})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DatasetStatus, Format};

    fn dataset(id: &str, summary: &str) -> Dataset {
        Dataset {
            id: id.into(),
            dept: "320600-YJJ".into(),
            title: "危险化学品企业名录".into(),
            summary: summary.into(),
            keywords: vec!["危化品".into()],
            theme: "安全生产".into(),
            format: Format::Table,
            share_type: ShareType::Conditional,
            share_condition: "凭授权".into(),
            open_type: String::new(),
            update_cycle: UpdateCycle::Monthly,
            fields: Vec::new(),
            source: None,
            published_at: "2024-01-01T00:00:00Z".into(),
            updated_at: "2024-02-01T00:00:00Z".into(),
            version: 1,
            status: DatasetStatus::Active,
        }
    }

    #[test]
    fn turtle_escapes_and_links_pages() {
        let a = dataset("YJJ-1", "含\"引号\"\n和换行");
        let b = dataset("YJJ-2", "");
        let mut depts = BTreeMap::new();
        depts.insert(
            "320600-YJJ".to_string(),
            Department {
                code: "320600-YJJ".into(),
                name: "南通市应急管理局".into(),
                region: "南通市".into(),
                created_at: String::new(),
            },
        );
        let page = Page {
            number: 2,
            per_page: 2,
            total: 5,
        };
        let g = graph("https://127.0.0.1:8443", "ttl", page, &[&a, &b], &depts);
        let ttl = to_turtle(&g);
        assert!(
            ttl.contains(r#"dct:description "含\"引号\"\n和换行"@zh"#),
            "{ttl}"
        );
        // No summary: the title describes the dataset.
        assert_eq!(
            ttl.matches(r#"dct:description "危险化学品企业名录"@zh"#)
                .count(),
            1
        );
        assert!(
            ttl.contains("hydra:next <https://127.0.0.1:8443/v1/catalog.ttl?page=3&per_page=2>")
        );
        assert!(ttl.contains("hydra:previous"));
        assert!(ttl.contains("dcat:accessURL <https://127.0.0.1:8443/v1/datasets/YJJ-1/records>"));
        assert!(ttl.contains("access-right/RESTRICTED"));
        let ld = to_jsonld(&g);
        let nodes = ld["@graph"].as_array().unwrap();
        let agent = nodes
            .iter()
            .find(|n| n["@id"] == "https://127.0.0.1:8443/v1/departments/320600-YJJ")
            .unwrap();
        assert_eq!(agent["foaf:name"][0]["@value"], "南通市应急管理局");
        assert_eq!(page.last(), 3);
    }

    #[test]
    fn last_page_has_no_next() {
        let page = Page {
            number: 1,
            per_page: 10,
            total: 0,
        };
        let g = graph("https://h:1", "jsonld", page, &[], &BTreeMap::new());
        assert!(!to_turtle(&g).contains("hydra:next"));
        assert_eq!(page.last(), 1);
    }
}
