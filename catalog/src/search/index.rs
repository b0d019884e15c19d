//! [`SearchIndex`]: opening (and recovering) the on-disk index, staging and committing
//! changes, and running searches.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::{Directory, INDEX_WRITER_LOCK, MmapDirectory};
use tantivy::schema::{Schema, Value};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument,
    TantivyError, Term,
};

use super::facets::FacetCollector;
use super::highlight::Highlighter;
use super::schema::{self, FORMAT_VERSION, Fields};
use super::tokenizer::{self, TOKENIZER_NAME};
use super::{Facets, Hit, IndexDoc, MAX_LIMIT, SearchQuery, SearchResult, SearchSort, query};
use crate::model::ShareType;

/// Memory the writer may use for buffered documents before it flushes a segment. One
/// indexing thread: documents come from one indexer task in small batches, and every
/// commit starts the threads' arenas afresh, so more threads only cost memory churn.
const WRITER_MEMORY_BYTES: usize = 20_000_000;
const WRITER_THREADS: usize = 1;

/// Files whose presence shows that a directory holds a tantivy index (and may therefore
/// be wiped when it cannot be opened).
const INDEX_MARKER_FILES: [&str; 2] = ["meta.json", ".managed.json"];

/// What is stored in each commit's payload (tantivy keeps it in `meta.json`, across
/// merges, until the next commit).
#[derive(Debug, Serialize, Deserialize)]
struct CommitPayload {
    /// [`FORMAT_VERSION`] of the code that wrote the index.
    format: u32,
    /// The catalog's applied-log index reflected by this commit.
    applied: u64,
}

/// The full-text index of the catalog, kept on each node as a view of the applied state.
///
/// One writer (behind a mutex) for the single indexer task, one reader shared by all
/// searches; changes become searchable when [`SearchIndex::commit`] returns. All methods
/// block on disk I/O and CPU: call them from a blocking context (`spawn_blocking`), not
/// directly on an async executor thread.
pub struct SearchIndex {
    fields: Fields,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    applied: Mutex<Option<u64>>,
    fresh: bool,
}

impl fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchIndex")
            .field("num_docs", &self.num_docs())
            .field("applied", &self.applied_marker())
            .field("fresh", &self.fresh)
            .finish()
    }
}

/// Why an existing index could not be opened.
enum OpenError {
    /// Another writer holds the index: it is in use, never wipe it.
    Locked(anyhow::Error),
    /// The index is damaged or was written by an incompatible version: rebuild it.
    Unusable(anyhow::Error),
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it if absent.
    ///
    /// If the directory holds an index that cannot be opened (damaged files, another
    /// schema or format version), the index is wiped and recreated empty. Either way a
    /// newly created index reports [`opened_fresh`](Self::opened_fresh) and has no
    /// [`applied_marker`](Self::applied_marker), so the caller rebuilds it from catalog
    /// state. A non-empty directory that does not look like an index is left alone and
    /// is an error, so that a misconfigured path never deletes unrelated files.
    pub fn open(dir: &Path) -> anyhow::Result<SearchIndex> {
        tokenizer::warm_up();
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create search index directory {}", dir.display()))?;
        let (schema, fields) = schema::build();

        if is_empty_dir(dir)? {
            return create(dir, schema, fields);
        }
        if !INDEX_MARKER_FILES.iter().any(|f| dir.join(f).exists()) {
            bail!(
                "{} is not empty and does not hold a search index; refusing to overwrite it",
                dir.display()
            );
        }
        match open_existing(dir, &schema, fields.clone()) {
            Ok(index) => Ok(index),
            Err(OpenError::Locked(error)) => Err(error),
            Err(OpenError::Unusable(error)) => {
                tracing::warn!(
                    dir = %dir.display(),
                    error = format!("{error:#}"),
                    "search index cannot be opened; recreating it empty for a rebuild"
                );
                // The writer lock is taken first so that an index in use by another
                // process (whose files may merely look damaged to us) is never wiped.
                let directory = MmapDirectory::open(dir)?;
                let lock = directory
                    .acquire_lock(&INDEX_WRITER_LOCK)
                    .context("search index is already open in another writer")?;
                wipe(dir)?;
                drop(lock);
                create(dir, schema, fields)
            }
        }
    }

    /// True when `open` created this index (the directory was empty, or its index was
    /// unusable and has been wiped): it holds no documents and must be rebuilt.
    pub fn opened_fresh(&self) -> bool {
        self.fresh
    }

    /// The catalog applied-log index this index reflects, as recorded by the last
    /// commit; `None` for an index never committed.
    pub fn applied_marker(&self) -> Option<u64> {
        *self.applied.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stages the document, replacing any document with the same id. Visible after
    /// [`commit`](Self::commit).
    pub fn upsert(&self, doc: &IndexDoc) -> anyhow::Result<()> {
        let writer = self.lock_writer()?;
        writer.delete_term(Term::from_field_text(self.fields.id, &doc.id));
        writer
            .add_document(schema::to_document(&self.fields, doc))
            .context("cannot stage search document")?;
        Ok(())
    }

    /// Stages the removal of the document with this id (no-op if there is none).
    pub fn delete(&self, id: &str) -> anyhow::Result<()> {
        let writer = self.lock_writer()?;
        writer.delete_term(Term::from_field_text(self.fields.id, id));
        Ok(())
    }

    /// Commits staged changes with `applied` as the marker and reloads the reader: the
    /// changes are searchable when this returns.
    pub fn commit(&self, applied: u64) -> anyhow::Result<()> {
        let mut writer = self.lock_writer()?;
        self.commit_locked(&mut writer, applied)
    }

    /// Replaces the whole content by `docs` and commits with marker `applied`; returns
    /// the number of documents indexed. On error nothing changes (staged work is
    /// rolled back, including changes staged before the call).
    pub fn rebuild(
        &self,
        docs: impl Iterator<Item = IndexDoc>,
        applied: u64,
    ) -> anyhow::Result<usize> {
        let started = Instant::now();
        let mut writer = self.lock_writer()?;
        let staged = stage_all(&writer, &self.fields, docs)
            .and_then(|count| self.commit_locked(&mut writer, applied).map(|()| count));
        match staged {
            Ok(count) => {
                tracing::info!(
                    docs = count,
                    applied,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "search index rebuilt"
                );
                Ok(count)
            }
            Err(error) => {
                if let Err(rollback_error) = writer.rollback() {
                    tracing::warn!(%rollback_error, "search index: rollback after failed rebuild");
                }
                Err(error.context("cannot rebuild search index"))
            }
        }
    }

    /// Runs a search: the page of hits, the total number of matches and facet counts
    /// over all matches. `limit` is capped at [`MAX_LIMIT`]; a limit of 0 returns only
    /// the total and the facets.
    pub fn search(&self, q: &SearchQuery) -> anyhow::Result<SearchResult> {
        let started = Instant::now();
        let searcher = self.reader.searcher();
        let built = query::build(&self.fields, q);
        let limit = q.limit.min(MAX_LIMIT);
        // An offset past the last document returns an empty page; capping it keeps the
        // collector from reserving room for `offset` entries.
        let offset = q.offset.min(searcher.num_docs() as usize);

        let order = match q.sort {
            SearchSort::Relevance if built.scored => None,
            SearchSort::Relevance | SearchSort::Id => Some((schema::ID, Order::Asc)),
            SearchSort::Newest => Some((schema::PUBLISHED_AT, Order::Desc)),
            SearchSort::Oldest => Some((schema::PUBLISHED_AT, Order::Asc)),
        };
        let (total, page, facet_counts) = match order {
            None => {
                let top = (limit > 0).then(|| {
                    TopDocs::with_limit(limit)
                        .and_offset(offset)
                        .order_by_score()
                });
                let (total, top, facets) =
                    searcher.search(&*built.query, &(Count, top, FacetCollector))?;
                (total, top.unwrap_or_default(), facets)
            }
            Some((field, direction)) => {
                // A stable order by a column (id without text: pages stay consistent);
                // scores are not computed.
                let top = (limit > 0).then(|| {
                    TopDocs::with_limit(limit)
                        .and_offset(offset)
                        .order_by_string_fast_field(field, direction)
                });
                let (total, top, facets) =
                    searcher.search(&*built.query, &(Count, top, FacetCollector))?;
                let page: Vec<(f32, DocAddress)> = top
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(_, address)| (0.0, address))
                    .collect();
                (total, page, facets)
            }
        };

        // Snippet generation looks up every query term's frequency: only when needed.
        let highlight = built.scored && !page.is_empty();
        let highlighter = Highlighter::new(&searcher, &*built.query, &self.fields, highlight)?;
        let hits = page
            .into_iter()
            .map(|(score, address)| self.hit(&searcher, &highlighter, score, address))
            .collect::<anyhow::Result<Vec<Hit>>>()?;
        let [dept, share_type, theme] = facet_counts;
        tracing::debug!(
            q = %q.q,
            total,
            hits = hits.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "search"
        );
        Ok(SearchResult {
            total: total as u64,
            hits,
            facets: Facets {
                dept,
                share_type,
                theme,
            },
        })
    }

    /// Number of searchable documents (as of the last commit).
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn hit(
        &self,
        searcher: &Searcher,
        highlighter: &Highlighter,
        score: f32,
        address: DocAddress,
    ) -> anyhow::Result<Hit> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        };
        let stored_share_type = text(self.fields.share_type);
        let share_type = ShareType::parse(stored_share_type).ok_or_else(|| {
            anyhow!("search index holds an invalid share type {stored_share_type:?}")
        })?;
        Ok(Hit {
            id: text(self.fields.id).to_string(),
            title: text(self.fields.title).to_string(),
            dept: text(self.fields.dept).to_string(),
            dept_name: text(self.fields.dept_name).to_string(),
            share_type,
            score,
            highlight: highlighter.highlight(text(self.fields.title), text(self.fields.summary)),
        })
    }

    fn lock_writer(&self) -> anyhow::Result<std::sync::MutexGuard<'_, IndexWriter>> {
        // A panic while holding the writer may have left it half-way through a change;
        // refuse to continue rather than commit a partial state.
        self.writer
            .lock()
            .map_err(|_| anyhow!("search index writer is unusable after a panic"))
    }

    fn commit_locked(&self, writer: &mut IndexWriter, applied: u64) -> anyhow::Result<()> {
        let payload = serde_json::to_string(&CommitPayload {
            format: FORMAT_VERSION,
            applied,
        })?;
        let mut prepared = writer
            .prepare_commit()
            .context("cannot prepare search index commit")?;
        prepared.set_payload(&payload);
        prepared.commit().context("cannot commit search index")?;
        self.reader
            .reload()
            .context("cannot reload search index reader")?;
        *self.applied.lock().unwrap_or_else(PoisonError::into_inner) = Some(applied);
        Ok(())
    }
}

fn stage_all(
    writer: &IndexWriter,
    fields: &Fields,
    docs: impl Iterator<Item = IndexDoc>,
) -> anyhow::Result<usize> {
    writer.delete_all_documents()?;
    let mut count = 0;
    for doc in docs {
        writer.add_document(schema::to_document(fields, &doc))?;
        count += 1;
    }
    Ok(count)
}

fn create(dir: &Path, schema: Schema, fields: Fields) -> anyhow::Result<SearchIndex> {
    let index = Index::create_in_dir(dir, schema)
        .with_context(|| format!("cannot create search index in {}", dir.display()))?;
    assemble(index, fields, None, true).map_err(|e| match e {
        OpenError::Locked(e) | OpenError::Unusable(e) => e,
    })
}

fn open_existing(dir: &Path, schema: &Schema, fields: Fields) -> Result<SearchIndex, OpenError> {
    let unusable = |e: anyhow::Error| OpenError::Unusable(e);
    let index = Index::open_in_dir(dir)
        .map_err(anyhow::Error::from)
        .map_err(unusable)?;
    if index.schema() != *schema {
        return Err(unusable(anyhow!("schema differs from this version's")));
    }
    let metas = index
        .load_metas()
        .map_err(anyhow::Error::from)
        .map_err(unusable)?;
    let applied = match metas.payload.as_deref() {
        None => None,
        Some(text) => {
            let payload: CommitPayload = serde_json::from_str(text)
                .map_err(|e| unusable(anyhow!("unreadable commit payload {text:?}: {e}")))?;
            if payload.format != FORMAT_VERSION {
                return Err(unusable(anyhow!(
                    "index format {} differs from this version's {FORMAT_VERSION}",
                    payload.format
                )));
            }
            Some(payload.applied)
        }
    };
    assemble(index, fields, applied, false)
}

/// Registers the analyzer and opens the reader and the writer.
fn assemble(
    index: Index,
    fields: Fields,
    applied: Option<u64>,
    fresh: bool,
) -> Result<SearchIndex, OpenError> {
    index
        .tokenizers()
        .register(TOKENIZER_NAME, tokenizer::analyzer());
    // Opening the reader opens every segment, so damaged segment files show up here.
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(|e: TantivyError| OpenError::Unusable(e.into()))?;
    let writer: IndexWriter = index
        .writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY_BYTES)
        .map_err(|e| match e {
            TantivyError::LockFailure(..) => OpenError::Locked(
                anyhow::Error::from(e).context("search index is already open in another writer"),
            ),
            other => OpenError::Unusable(other.into()),
        })?;
    writer.set_merge_policy(Box::new(merge_policy()));
    Ok(SearchIndex {
        fields,
        reader,
        writer: Mutex::new(writer),
        applied: Mutex::new(applied),
        fresh,
    })
}

/// Merges only segments of about the same size. tantivy's default puts every segment
/// under 10,000 documents in one layer, so with a commit every half second each merge
/// rewrote the whole catalog's segment together with the few documents just added: on a
/// cluster taking writes, merging was the largest single cost of a write (a profile of
/// registrations at 16 clients: 10% of all server CPU). With a small layer floor the
/// large segment stays in a layer of its own and is rewritten only when segments of its
/// size have accumulated (amortised O(n log n) work instead of O(n) every few commits).
fn merge_policy() -> tantivy::indexer::LogMergePolicy {
    let mut policy = tantivy::indexer::LogMergePolicy::default();
    policy.set_min_layer_size(MERGE_MIN_LAYER_DOCS);
    // Updates and retirements delete documents: merge a segment away once a third of it
    // is dead, so searches do not wade through them.
    policy.set_del_docs_ratio_before_merge(0.33);
    policy
}

/// Segments below this many documents count as one size class for merging.
const MERGE_MIN_LAYER_DOCS: u32 = 64;

fn is_empty_dir(dir: &Path) -> anyhow::Result<bool> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read search index directory {}", dir.display()))?;
    Ok(entries.next().is_none())
}

/// Removes everything inside `dir` (not `dir` itself, which may be a mount point).
fn wipe(dir: &Path) -> anyhow::Result<()> {
    let context = || format!("cannot wipe search index directory {}", dir.display());
    for entry in std::fs::read_dir(dir).with_context(context)? {
        let path = entry.with_context(context)?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).with_context(context)?;
        } else {
            std::fs::remove_file(&path).with_context(context)?;
        }
    }
    Ok(())
}
