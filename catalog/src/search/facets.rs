//! Facet counts (documents per department, share type and theme) over every matching
//! document, not just the returned page.
//!
//! A small custom collector rather than tantivy's aggregation framework: the values are
//! dictionary-encoded string columns, so each segment counts term ordinals in a plain
//! vector (one array increment per document and facet) and turns only the ordinals that
//! occurred into strings, in one sorted pass over the column dictionary. That avoids the
//! aggregation request/response (JSON-shaped) machinery and its bucket limits, which
//! matter with ~2,000 departments in real catalogs.

use std::collections::{BTreeMap, HashMap};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Cardinality, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::schema::{DEPT, SHARE_TYPE, THEME_EXACT};

/// The faceted columns, in the order of [`FacetCounts`]' arrays.
const FACET_FIELDS: [&str; 3] = [DEPT, SHARE_TYPE, THEME_EXACT];

/// Counts per value of each of [`FACET_FIELDS`].
pub(super) type FacetCounts = [BTreeMap<String, u64>; 3];

/// One segment's counts per value (values in dictionary order, counts > 0).
pub(super) type SegmentCounts = [Vec<(String, u64)>; 3];

/// Collects [`FacetCounts`] for the documents a query matches.
pub(super) struct FacetCollector;

pub(super) struct SegmentFacetCollector {
    /// Per facet: the segment's column (absent when no document of the segment has a
    /// value) and a count per term ordinal of that column.
    columns: [Option<(StrColumn, Vec<u64>)>; 3],
    /// Scratch space for a block of ordinals, and of row ids for columns where not
    /// every document has a value.
    block: Vec<u64>,
    row_ids: Vec<u32>,
    doc_ids: Vec<u32>,
}

impl Collector for FacetCollector {
    type Fruit = FacetCounts;
    type Child = SegmentFacetCollector;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentFacetCollector> {
        let fast_fields = segment.fast_fields();
        let mut columns: [Option<(StrColumn, Vec<u64>)>; 3] = Default::default();
        for (slot, name) in columns.iter_mut().zip(FACET_FIELDS) {
            *slot = fast_fields.str(name)?.map(|column| {
                let counts = vec![0u64; column.num_terms()];
                (column, counts)
            });
        }
        Ok(SegmentFacetCollector {
            columns,
            block: Vec::new(),
            row_ids: Vec::new(),
            doc_ids: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segment_fruits: Vec<SegmentCounts>) -> tantivy::Result<FacetCounts> {
        // Hash first, order once: with many segments and thousands of departments,
        // inserting every segment's values into a BTreeMap costs more than counting.
        let mut merged: [HashMap<String, u64>; 3] = Default::default();
        for fruit in segment_fruits {
            for (into, from) in merged.iter_mut().zip(fruit) {
                for (value, count) in from {
                    match into.get_mut(value.as_str()) {
                        Some(total) => *total += count,
                        None => {
                            into.insert(value, count);
                        }
                    }
                }
            }
        }
        Ok(merged.map(|counts| counts.into_iter().collect()))
    }
}

impl SegmentCollector for SegmentFacetCollector {
    type Fruit = SegmentCounts;

    // Ordinals always index the column's own dictionary, so `counts[ord]` is in bounds.
    // Columns where every document has exactly one value (Cardinality::Full: dept and
    // share type always, theme unless some dataset has none) are read directly by
    // document id; when the query is not scored, all columns are read a block at a time; this is the hot loop of a
    // search that matches much of the catalog.

    fn collect(&mut self, doc: DocId, _score: Score) {
        for (column, counts) in self.columns.iter_mut().flatten() {
            let ords = column.ords();
            if ords.get_cardinality() == Cardinality::Full {
                counts[ords.values.get_val(doc) as usize] += 1;
            } else {
                for ord in column.term_ords(doc) {
                    counts[ord as usize] += 1;
                }
            }
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let Self {
            columns,
            block,
            row_ids,
            doc_ids,
        } = self;
        for (column, counts) in columns.iter_mut().flatten() {
            let ords = column.ords();
            let rows: &[u32] = if ords.get_cardinality() == Cardinality::Full {
                docs
            } else {
                row_ids.clear();
                doc_ids.clear();
                ords.row_ids_for_docs(docs, doc_ids, row_ids);
                row_ids
            };
            block.resize(rows.len(), 0);
            ords.values.get_vals(rows, block);
            for &ord in block.iter() {
                counts[ord as usize] += 1;
            }
        }
    }

    fn harvest(self) -> SegmentCounts {
        let mut out: SegmentCounts = Default::default();
        for (values, column) in out.iter_mut().zip(self.columns) {
            let Some((column, counts)) = column else {
                continue;
            };
            let ords: Vec<u64> = (0..counts.len() as u64)
                .filter(|&ord| counts[ord as usize] > 0)
                .collect();
            values.reserve(ords.len());
            let mut found = ords.iter();
            let result = column.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
                if let Some(&ord) = found.next() {
                    let value = String::from_utf8_lossy(bytes).into_owned();
                    values.push((value, counts[ord as usize]));
                }
            });
            if let Err(error) = result {
                // The dictionary is read from a memory-mapped segment file; failing here
                // means the file is damaged. Counts for this facet are then incomplete,
                // which is better than failing the whole search.
                tracing::warn!(%error, "search index: cannot read facet dictionary");
            }
        }
        out
    }
}
